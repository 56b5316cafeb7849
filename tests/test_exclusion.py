"""What a query excludes ("... without straw") and the items that name it (the engine's penalty: test_engine.py)."""

from __future__ import annotations

import pytest

from entrel.logic.exclusion import excluded_terms, violated_exclusion
from entrel.text import normalize


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("Toddler water bottle WITHOUT straw", ("straw",)),
        ("lights without wiring with switch", ("wiring",)),
        ("wind up clocks w/o batteries", ("batter",)),
        ("picnic basket without accessories", ("accessor",)),
        ("futon frames full size without mattress", ("mattress",)),
        ("polygel nail kit without led lamp", ("led", "lamp")),
        # "no" and "free" are too often part of a product's name to read as exclusions.
        ("sugar free gum", ()),
        ("no show socks", ()),
        ("without", ()),
    ],
)
def test_excluded_terms_of_a_query(query, terms):
    assert excluded_terms(normalize(query)) == terms


@pytest.mark.parametrize(
    ("title", "violated"),
    [
        ("Kids Water Bottle with Straw Lid", "straw"),
        ("Bottle with 2 Straws", "straw"),
        ("Strawberry Water Bottle", ""),  # a longer word, not the excluded one
        ("Water Bottle, No Straw", ""),  # the item says it lacks it
        ("Straw-free Sippy Bottle", ""),
        ("Bottle without the straws", ""),
        ("Plain Water Bottle", ""),
    ],
)
def test_an_item_violates_an_exclusion_only_by_naming_it_without_negating_it(title, violated):
    assert violated_exclusion(("straw",), title) == violated
