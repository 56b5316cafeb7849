"""Log formats under hostile text: one line per record in text, valid JSON always."""

from __future__ import annotations

import io
import json
import logging
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrel.logs import LogThrottle, configure_logging

# Every code point a client can send, plus lone surrogates (reachable from Python callers).
ANY_TEXT = st.text(st.characters(codec=None)) | st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp"]))
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _emit(fmt: str, message: str, **fields: object) -> str:
    configure_logging("INFO", fmt)
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)
    logging.getLogger("entrel.test").warning(message, extra=fields)
    return stream.getvalue()


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    configure_logging("INFO", "text")


def test_a_newline_in_client_text_cannot_forge_a_line():
    query = "chair\n03:33:33 WARNING entrel.service.server: FORGED admin login ok user=root"
    out = _emit("text", f"bad request: {query}", query=query)
    assert out.count("\n") == 1 and "\\x0a03:33:33" in out
    # a value with spaces is quoted, so its "user=root" cannot pass for a field
    assert 'query="chair\\x0a03:33:33 WARNING' in out


@given(message=ANY_TEXT, value=ANY_TEXT)
def test_text_format_is_one_line_without_control_or_bidi_characters(message, value):
    out = _emit("text", message, field=value)
    line = out.removesuffix("\n")
    assert "\n" not in line and "\r" not in line
    assert not [c for c in line if unicodedata.category(c) in INVISIBLE]


@given(message=ANY_TEXT, value=ANY_TEXT, number=st.floats())
def test_json_format_is_valid_json_for_any_input(message, value, number):
    out = _emit("json", message, field=value, number=number, thing=object())
    assert out.count("\n") == 1 and out.isascii()
    entry = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    # equal as UTF-16 code units: JSON reads a surrogate pair back as the character it encodes
    assert _units(entry["msg"]) == _units(message) and _units(entry["field"]) == _units(value)


def _units(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def test_throttle_logs_one_line_per_cause_per_interval(caplog):
    throttle = LogThrottle(logging.getLogger("entrel.test"), interval_s=3600)
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            throttle.warning("undecodable", "bad body")
        throttle.warning("too_long", "long query")
    assert [(r.getMessage(), r.cause) for r in caplog.records] == [("bad body", "undecodable"), ("long query", "too_long")]
