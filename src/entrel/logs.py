"""Structured logging: every `extra={...}` field is kept, as JSON or key=value text.

Fields often carry client text (queries, item ids), so neither format lets
it forge a line: the text format escapes control, bidi and other invisible
characters (a newline becomes ``\\n``), and the JSON format is always one
valid JSON object per line, whatever it is given.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
import unicodedata

__all__ = ["LogThrottle", "configure_logging", "escape"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _escape_char(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def escape(text: str) -> str:
    """`text` on one line: control, format (bidi, zero-width) and unassigned characters and line
    separators as backslash escapes, backslashes doubled so an escape cannot be faked."""
    if text.isprintable() and "\\" not in text:  # the common case, fast
        return text
    return "".join(map(_escape_char, text))


def _jsonable(value: object) -> object:
    """`value` with what JSON cannot hold (NaN, infinities, odd objects) as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _value(value: object) -> str:
    """A key=value field's value, quoted when it holds a space, '=' or '"' (so it cannot fake a field)."""
    text = escape(str(value))
    if text and not any(c in text for c in ' ="') and text.isprintable():
        return text
    return '"' + text.replace('"', '\\"') + '"'


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # ASCII escapes keep lone surrogates and bidi controls out of the stream.
        return json.dumps(_jsonable(entry), ensure_ascii=True, allow_nan=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{escape(str(k))}={_value(v)}" for k, v in _fields(record).items())
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{when} {record.levelname:<7} {escape(record.name)}: {escape(record.getMessage())}"
        line = f"{line}  {extras}" if extras else line
        if record.exc_info:
            # Continuation lines are marked, so a message inside a traceback cannot pass for a record.
            line += "".join(f"\n  | {escape(part)}" for part in self.formatException(record.exc_info).splitlines())
        return line


# Libraries whose info/debug chatter is dropped (some reset their own
# logger levels on import, so this is a handler filter, not a level).
_NOISY = ("transformers", "sentence_transformers", "httpx", "urllib3", "bm25s", "filelock")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".", 1)[0] not in _NOISY


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route all logs to stderr in `fmt` (json or text); quiet the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_quiet_libraries)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class LogThrottle:
    """At most one warning per cause per interval, with the count held back since.

    For problems a client can trigger at will (bad requests): each cause is
    still visible in the log, but a flood of them cannot flood the log.
    Causes must come from a small fixed set, never from request text.
    """

    def __init__(self, logger: logging.Logger, interval_s: float) -> None:
        self._log = logger
        self._interval = interval_s
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def warning(self, cause: str, message: str, **fields: object) -> None:
        now = time.monotonic()
        with self._lock:
            last, held = self._last.get(cause, (-math.inf, 0))
            if now - last < self._interval:
                self._last[cause] = (last, held + 1)
                return
            self._last[cause] = (now, 0)
        self._log.warning(message, extra={"cause": cause, "suppressed_since_last": held, **fields})
