"""T-norms over padded (items x entities) score matrices.

An item fits a query only if every entity fits: its score is a t-norm of
its entities' scores. Rows are padded with 1.0, the identity of every
t-norm, so no mask is needed and one vectorised call scores all items.

The same functions run on numpy arrays (serving) and torch tensors
(training, where the loss is taken on the aggregated score), through the
array API namespace of their input.

    >>> import numpy as np
    >>> s = np.array([[0.9, 0.5, 1.0]])
    >>> float(tnorm("product")(s)[0]), float(tnorm("min")(s)[0]), float(tnorm("lukasiewicz")(s)[0])
    (0.45, 0.5, 0.4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from array_api_compat import array_namespace

__all__ = ["PAD", "TNORMS", "TNorm", "tnorm"]

# The identity element: a padded slot changes no t-norm.
PAD = 1.0

TNorm = Callable[[Any], Any]


def product(scores: Any) -> Any:
    """Probabilistic AND: every entity must fit, independently."""
    xp = array_namespace(scores)
    return xp.prod(scores, axis=-1)


def minimum(scores: Any) -> Any:
    """Goedel: the item is as good as its worst entity."""
    xp = array_namespace(scores)
    return xp.min(scores, axis=-1)


def lukasiewicz(scores: Any) -> Any:
    """Lukasiewicz: shortfalls add up; strict, hits 0 once they sum to 1."""
    xp = array_namespace(scores)
    return xp.clip(xp.sum(scores - 1.0, axis=-1) + 1.0, 0.0, 1.0)


TNORMS: dict[str, TNorm] = {"product": product, "min": minimum, "lukasiewicz": lukasiewicz}


def tnorm(name: str) -> TNorm:
    """The t-norm called `name` (product, min or lukasiewicz)."""
    try:
        return TNORMS[name]
    except KeyError:
        raise ValueError(f"unknown t-norm {name!r}; choose one of {', '.join(TNORMS)}") from None
