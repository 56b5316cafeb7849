"""T-norms over padded (items x entities) score matrices.

An item fits a query only if every entity fits: its score is a t-norm of
its entities' scores. Rows are padded with 1.0, the identity of every
t-norm, so no mask is needed and one vectorised call scores all items.

The same functions run on numpy arrays (serving) and torch tensors
(training, where the loss is taken on the aggregated score), through the
array API namespace of their input (:func:`namespace`).

    >>> import numpy as np
    >>> s = np.array([[0.9, 0.5, 1.0]])
    >>> float(tnorm("product")(s)[0]), float(tnorm("min")(s)[0]), float(tnorm("lukasiewicz")(s)[0])
    (0.45, 0.5, 0.4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace

__all__ = ["PAD", "TNORMS", "TNorm", "namespace", "tnorm"]

# The identity element: a padded slot changes no t-norm.
PAD = 1.0

TNorm = Callable[[Any], Any]


class _NumpyUfuncs:
    """The array API functions the soft logic uses, as numpy's ufuncs called directly.

    Serving calls the logic on small numpy arrays, where array_api_compat's
    wrappers (argument checks, dtype handling) cost more than the maths:
    these are the very functions the wrappers end in (``np.max`` is
    ``np.maximum.reduce``, ``np.prod`` is ``np.multiply.reduce``), so the
    results are identical (tests/test_tnorms.py compares the two).
    """

    @staticmethod
    def clip(x: np.ndarray, low: float, high: float) -> np.ndarray:
        out = np.maximum(x, low)
        return np.minimum(out, high, out=out)

    @staticmethod
    def max(x: np.ndarray, axis: int) -> np.ndarray:
        return np.maximum.reduce(x, axis=axis)

    @staticmethod
    def min(x: np.ndarray, axis: int) -> np.ndarray:
        return np.minimum.reduce(x, axis=axis)

    @staticmethod
    def prod(x: np.ndarray, axis: int) -> np.ndarray:
        return np.multiply.reduce(x, axis=axis)

    @staticmethod
    def sum(x: np.ndarray, axis: int) -> np.ndarray:
        return np.add.reduce(x, axis=axis)

    @staticmethod
    def concat(arrays: list[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(arrays, axis=axis)


NUMPY = _NumpyUfuncs()


def namespace(x: Any) -> Any:
    """The array namespace of `x`: numpy's ufuncs for a numpy array (serving), array_api_compat's otherwise (torch)."""
    return NUMPY if type(x) is np.ndarray else array_namespace(x)


def product(scores: Any) -> Any:
    """Probabilistic AND: every entity must fit, independently."""
    xp = namespace(scores)
    return xp.prod(scores, axis=-1)


def minimum(scores: Any) -> Any:
    """Goedel: the item is as good as its worst entity."""
    xp = namespace(scores)
    return xp.min(scores, axis=-1)


def lukasiewicz(scores: Any) -> Any:
    """Lukasiewicz: shortfalls add up; strict, hits 0 once they sum to 1."""
    xp = namespace(scores)
    return xp.clip(xp.sum(scores - 1.0, axis=-1) + 1.0, 0.0, 1.0)


TNORMS: dict[str, TNorm] = {"product": product, "min": minimum, "lukasiewicz": lukasiewicz}


def tnorm(name: str) -> TNorm:
    """The t-norm called `name` (product, min or lukasiewicz)."""
    try:
        return TNORMS[name]
    except KeyError:
        raise ValueError(f"unknown t-norm {name!r}; choose one of {', '.join(TNORMS)}") from None
