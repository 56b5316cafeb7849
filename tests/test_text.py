"""The one normalisation that makes offline and online cache keys agree."""

from hypothesis import given
from hypothesis import strategies as st

from entrel.text import _normalize_unicode, is_blank, normalize


def test_examples():
    assert normalize("  Red   LEATHER Office-Chair\u200b ") == "red leather office-chair"
    assert normalize("Women\u2019s \u201cUGG\u201d") == 'women\'s "ugg"'
    assert normalize("Ｒｅｄ\u00a0chair") == "red chair"  # full-width and no-break space
    assert normalize("1/2 inch\tbinder\n") == "1/2 inch binder"
    assert normalize("STRASSE") == normalize("straße")


def test_odd_unicode_never_raises_and_drops_invisibles():
    assert normalize("\ud800chair\u202e\ufeff") == "chair"  # lone surrogate, bidi override, BOM
    assert normalize("🪑 chair") == "🪑 chair"
    assert is_blank("\u200b \u200d\t\n")


@given(st.text())
def test_idempotent_and_clean(text):
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip()
    assert "  " not in once


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_shortcut_gives_what_the_full_path_gives(text):
    assert normalize(text) == _normalize_unicode(text)
