"""The base of errors a user can fix (bad config, missing file or model, broken snapshot).

The CLI prints these as one line and exits 2; anything else is a bug and
keeps its traceback.
"""

__all__ = ["EntrelError"]


class EntrelError(Exception):
    """A problem with input or environment, explained by its message."""
