"""entrel: entity-decomposed relevance for e-commerce search.

Products are decomposed into typed entities; a cross-encoder scores
(query, entity) pairs, precomputed nightly into an LMDB snapshot and served
over gRPC with a live fallback; a t-norm combines them per item.
"""

__version__ = "0.1.0"
