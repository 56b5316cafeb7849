"""The scorer's automatic precision: bfloat16 on CPUs that compute it natively, close to float32."""

from __future__ import annotations

import numpy as np
import torch

from entrel.config import ModelSettings
from entrel.scoring import CrossEncoderScorer, cpu_has_fast_bfloat16

PAIRS = [
    ("red leather office chair", "product type: office chair"),
    ("red leather office chair", "color: blue"),
    ("red leather office chair", "material: mesh"),
    ("womens running shoes size 8", "audience: men"),
    ("womens running shoes size 8", "size: size 8"),
    ("water bottle 32 oz", "product type: backpack"),
] * 3


def test_auto_precision_follows_the_cpu(trained_model):
    auto = CrossEncoderScorer(ModelSettings(name_or_path=trained_model, device="cpu"))
    assert auto.dtype == (torch.bfloat16 if cpu_has_fast_bfloat16() else torch.float32)


def test_bfloat16_stays_close_to_float32(trained_model):
    # bfloat16 asked for explicitly, so the comparison is real on every CPU (emulated where not native).
    fast = CrossEncoderScorer(ModelSettings(name_or_path=trained_model, device="cpu", dtype="bfloat16"))
    exact = CrossEncoderScorer(ModelSettings(name_or_path=trained_model, device="cpu", dtype="float32"))
    assert fast.dtype == torch.bfloat16 and next(fast.model.parameters()).dtype == torch.bfloat16
    assert fast.fingerprint == exact.fingerprint, "a precision choice is not another model"
    low, reference = fast.score(PAIRS), exact.score(PAIRS)
    assert not np.array_equal(low, reference), "bfloat16 scores identical to float32: the precision was not applied"
    # Measured: within 0.016 of float32 on the nightly's pairs (mean 0.0007), 0.035 at a mid-range score on
    # CI's model (the sigmoid is steepest there); the order of the pairs is what ranking relies on.
    np.testing.assert_allclose(low, reference, atol=0.06)
    distinct = slice(0, len(PAIRS) // 3)
    ranks = [np.argsort(np.argsort(scores[distinct])) for scores in (low, reference)]
    assert np.corrcoef(*ranks)[0, 1] >= 0.9, "bfloat16 reorders the pairs"
    assert np.ptp(reference) > 0.5, "the pairs should span fitting and contradicting entities"


def test_int8_keeps_float32_weights_and_marks_its_fingerprint(trained_model):
    scorer = CrossEncoderScorer(ModelSettings(name_or_path=trained_model, device="cpu", quantize="int8"))
    assert scorer.dtype == torch.float32 and scorer.fingerprint.endswith("-int8")
    assert scorer.score(PAIRS).shape == (len(PAIRS),)
