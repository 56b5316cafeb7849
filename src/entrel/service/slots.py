"""A fixed number of slots taken without waiting: the inline-request admission of the engine.

One counter under one lock both admits and tells how many are taken, so a
caller can ask "all taken?" before doing any work for a request (a hint,
read without the lock) and learn when it holds the only slot.
"""

from __future__ import annotations

import threading

__all__ = ["Slots"]


class Slots:
    """At most `limit` holders at once; `take` never waits."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """Take a slot: how many are taken now, this one included (1: it is alone), or None when all are."""
        with self._lock:
            if self._taken >= self.limit:
                return None
            self._taken += 1
            return self._taken

    def give_back(self) -> None:
        with self._lock:
            if self._taken == 0:
                raise RuntimeError("no slot is taken")
            self._taken -= 1

    @property
    def full(self) -> bool:
        """Whether every slot is taken now (read without the lock: a hint that may be a moment old)."""
        return self._taken >= self.limit
