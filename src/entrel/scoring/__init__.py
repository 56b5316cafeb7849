"""Cross-encoder scoring of (query, text) pairs."""

from entrel.scoring.cross_encoder import (
    MODEL_INFO_FILE,
    CrossEncoderScorer,
    ModelNotFoundError,
    Scorer,
    cpu_has_fast_bfloat16,
    length_sorted_batches,
    load_cross_encoder,
    model_fingerprint,
    pick_device,
    resolve_model_path,
)
from entrel.scoring.similarity import TakingTurns, TextEncoder, bag_vectors, entity_bags, similarities

__all__ = [
    "MODEL_INFO_FILE",
    "CrossEncoderScorer",
    "ModelNotFoundError",
    "Scorer",
    "TakingTurns",
    "TextEncoder",
    "bag_vectors",
    "cpu_has_fast_bfloat16",
    "entity_bags",
    "length_sorted_batches",
    "load_cross_encoder",
    "model_fingerprint",
    "pick_device",
    "resolve_model_path",
    "similarities",
]
