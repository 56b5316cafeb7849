"""Soft logic: t-norms, and the aggregator of coverage and compatibility that explains them."""

from entrel.logic.aggregate import COVERAGES, NEUTRAL, Aggregate, Aggregator, Weights, contradiction, match
from entrel.logic.tnorms import PAD, TNORMS, tnorm

__all__ = ["COVERAGES", "NEUTRAL", "PAD", "TNORMS", "Aggregate", "Aggregator", "Weights", "contradiction", "match", "tnorm"]
