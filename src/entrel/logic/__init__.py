"""Soft logic: t-norms and the aggregator that explains them."""

from entrel.logic.aggregate import Aggregate, Aggregator
from entrel.logic.tnorms import PAD, TNORMS, tnorm

__all__ = ["PAD", "TNORMS", "Aggregate", "Aggregator", "tnorm"]
