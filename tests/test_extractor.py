"""Entity extraction with the real spaCy model: structured columns first, then the title."""

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrel.catalog import CatalogItem, Entity, EntityExtractor, EntityType, Vocabulary
from entrel.catalog.canonical import canonical_type
from entrel.config import ExtractionSettings
from entrel.text import cased_like, normalize

CATALOG = [
    CatalogItem("1", "Acme ErgoPro Leather Office Chair", brand="Acme", category=("Furniture", "Office Chairs")),
    CatalogItem("2", "Zeta Runner Shoes", brand="Zeta", category=("Shoes", "Running Shoes")),
    CatalogItem("3", "UGG Dakota Slipper", brand="UGG", category=("Clothing", "Women", "Shoes", "Slippers")),
    CatalogItem("4", "Hydra Water Bottle", brand="Hydro Flask", category=("Sports", "Water Bottles")),
    CatalogItem("5", "Nest Thermostat", brand="Google Nest", category=("HVAC", "Thermostats", "Programmable")),
    CatalogItem("6", "Lamp", attributes={"brand": "Nordhaven", "type": "Desk Lamps"}),
]
VOCABULARY = Vocabulary.learn(CATALOG)


@pytest.fixture(scope="module")
def extractor():
    return EntityExtractor(ExtractionSettings(), VOCABULARY)


def texts(entities, type_):
    return [e.text for e in entities if e.type == EntityType(type_)]


def item(title, **fields):
    return CatalogItem("x", title, **fields)


def test_vocabulary_learns_brands_and_singular_types():
    assert {"acme", "zeta", "ugg", "hydro flask", "google nest", "nordhaven"} <= VOCABULARY.brands
    # Leaf types singular, with their tails; a non-type leaf ("Programmable") gives its parent.
    assert {"office chair", "chair", "running shoe", "shoe", "slipper", "water bottle", "thermostat"} <= (
        VOCABULARY.product_types
    )
    assert {"desk lamp", "lamp"} <= VOCABULARY.product_types  # from a "type" attribute
    assert not {"programmable", "women", "furniture"} & VOCABULARY.product_types


def test_vocabulary_json_round_trip():
    text = VOCABULARY.to_json()
    assert Vocabulary.from_json(text) == VOCABULARY
    assert Vocabulary.from_json(Vocabulary().to_json()) == Vocabulary()
    for bad in ("", "[]", '{"version": 99, "brands": [], "product_types": []}', '{"version": 1, "brands": [1]}'):
        with pytest.raises(ValueError):
            Vocabulary.from_json(bad)


def test_structured_columns_win_over_the_title(extractor):
    entities = extractor.extract(
        item(
            "Zeta Red Cotton Running Shoes",
            brand="Acme",
            color="Navy",
            category=("Furniture", "Office Chairs"),
            attributes={"fabric": "Leather"},
        )
    )
    assert texts(entities, "brand") == ["acme"]
    assert texts(entities, "color") == ["navy blue"]
    assert texts(entities, "product_type") == ["office chair"]
    assert texts(entities, "material") == ["leather"]


def test_attribute_keys_map_to_types(extractor):
    entities = extractor.extract(
        item(
            "Thing",
            attributes={"Fabric": "100% Cotton", "Capacity": "32oz", "Gender": "Womens", "Style": "Modern", "Colour": "Grey"},
        )
    )
    assert texts(entities, "material") == ["cotton"]
    assert texts(entities, "size") == ["32 oz"]
    assert texts(entities, "audience") == ["women"]
    assert texts(entities, "style") == ["modern"]
    assert texts(entities, "color") == ["gray"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Black/Red", ["black", "red"]),
        ("black and red", ["black", "red"]),
        ("Grey", ["gray"]),
        ("Mahogany Finish", ["mahogany"]),  # unlisted but short: kept, filler dropped
        ("Set F", []),
        ("Classic", []),
        ("WTC 100", []),
        ("N/A", []),
    ],
)
def test_color_column_values(extractor, value, expected):
    assert sorted(texts(extractor.extract(item("Widget", color=value)), "color")) == expected


def test_material_in_the_color_column_is_a_material(extractor):
    entities = extractor.extract(item("Widget", color="Stainless"))
    assert texts(entities, "color") == []
    assert texts(entities, "material") == ["stainless steel"]
    both = extractor.extract(item("Widget", color="Black Leather"))
    assert (texts(both, "color"), texts(both, "material")) == (["black"], ["leather"])


def test_title_only_entities(extractor):
    entities = extractor.extract(item("Acme Women's Navy Blue Leather Tote Bag, 12-Pack"))
    assert texts(entities, "brand") == ["acme"]
    assert texts(entities, "color") == ["navy blue"]
    assert texts(entities, "material") == ["leather"]
    assert texts(entities, "size") == ["12 pack"]
    assert texts(entities, "audience") == ["women"]
    assert texts(entities, "product_type") == ["bag"]  # head noun: "bag" is not in the vocabulary


def test_the_brief_example(extractor):
    entities = extractor.extract(item("UGG Women's Dakota Slipper, Chestnut, 7 M US"))
    assert entities == sorted(
        [
            Entity.of("product_type", "slipper"),
            Entity.of("brand", "ugg"),
            Entity.of("color", "chestnut"),
            Entity.of("size", "size 7"),
            Entity.of("audience", "women"),
            Entity.of("phrase", "dakota"),
        ],
        key=lambda e: (list(EntityType).index(e.type), e.text),
    )


def test_ambiguous_words_only_where_a_title_names_variants(extractor):
    assert texts(extractor.extract(item("Crest Mint Toothpaste, 4 oz")), "color") == []
    assert texts(extractor.extract(item("Male to Female Extension Cable")), "audience") == []
    assert texts(extractor.extract(item("Acme Toothbrush, Mint, 2 Pack")), "color") == ["mint"]
    assert texts(extractor.extract(item("Crest Toothpaste, Frosty Mint, 6 Ounce")), "color") == []


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Acme Cup 32oz", ["32 oz"]),
        ("Acme Soda 16.9 fl. oz", ["16.9 fl oz"]),
        ("Acme Pens, Pack of 4", ["4 pack"]),
        ("Acme Towels 15 x 25 Inches", ["15 x 25 inch"]),
        ("Acme Drill Bit 1-1/2 inch", ["1 1/2 inch"]),
        ("Acme 2 in 1 Laptop", []),
        ("Acme Shirt 1-Pack", []),
        ("Acme Shirt (Small, Blue)", ["small"]),
        ("Acme Bed Frame, Queen", ["queen"]),
        ("Acme Queen Mattress", ["queen"]),
        ("Acme Hoodie, Full Script, Blue", []),
        ("Acme Bully Sticks for Small Dogs", []),
        ("Acme Work Pant, Black, 34W X 32L", ["34w x 32l"]),
        ("Acme 1000W Microwave", ["1000 watt"]),
    ],
)
def test_sizes_are_canonical(extractor, title, expected):
    assert texts(extractor.extract(item(title)), "size") == expected


def test_product_type_from_category_leaf(extractor):
    entities = extractor.extract(item("Acme Deluxe Model 7", category=("Furniture", "Home Office", "Office Chairs")))
    assert texts(entities, "product_type") == ["office chair"]


def test_product_type_category_confirmed_by_the_title(extractor):
    # A noisy leaf the title does not confirm gives way to a parent it does.
    headphone = item("Sony Studio Headphone", category=("Electronics", "Headphones, Earbuds & Accessories", "Cases"))
    assert texts(extractor.extract(headphone), "product_type") == ["headphone"]
    # A leaf that is no product type gives way to its parent.
    thermostat = item("Nest Learning Thermostat", category=("Tools", "Thermostats", "Programmable"))
    assert texts(extractor.extract(thermostat), "product_type") == ["thermostat"]
    # Plural-only nouns stay plural; generic leading words go.
    pants = item("Lee Women's Relaxed Pant", category=("Clothing", "Women", "Casual Pants"))
    assert texts(extractor.extract(pants), "product_type") == ["pants"]
    assert texts(extractor.extract(pants), "audience") == ["women"]  # from the category path


def test_product_type_from_title_vocabulary_and_fallback(extractor):
    # Vocabulary type in the main phrase, before "with".
    chair = extractor.extract(item("Deluxe Office Chair with Water Bottle Holder"))
    assert texts(chair, "product_type") == ["office chair"]
    # No category, no vocabulary type: the head noun of the first segment.
    remote = extractor.extract(item("Alexa Voice Remote (2nd Gen) with power controls"))
    assert texts(remote, "product_type") == ["remote"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # A category written into the title in lower case: the vocabulary type only says what it fits.
        ("Acme AB-12 water bottle holder Black", "water bottle holder"),
        ("Acme office chair mat", "office chair mat"),
        # Capitals, a colour, a separator or "with" end the compound.
        ("Acme Water Bottle Holder", "water bottle"),
        ("Acme water bottle Holder", "water bottle"),
        ("Acme office chair black", "office chair"),
        ("Acme office chair, mesh", "office chair"),
        ("Acme office chair with mat", "office chair"),
        # A type keeps at most three words.
        ("Acme office chair mat holder", "office chair mat"),
    ],
)
def test_product_type_runs_on_over_the_nouns_it_modifies(extractor, title, expected):
    assert texts(extractor.extract(item(title)), "product_type") == [expected]


def test_cased_like_only_where_normalising_changed_case_and_spaces():
    assert cased_like("  HP  battery\tCharger ", normalize("  HP  battery\tCharger ")) == "HP battery Charger"
    assert cased_like("ﬁlter CASE", normalize("ﬁlter CASE")) is None  # NFKC unfolds the ligature
    # Lower-casing "İ" gives two characters: every later offset would read the wrong letters.
    assert cased_like("İZMIR phone Case", normalize("İZMIR phone Case")) is None


def test_product_type_is_never_a_number_nor_a_unit(extractor):
    # A type column holding "1" is junk; a title ending in a spec unit does not make the unit its type.
    numbered = extractor.extract(item("Canon PG-545 ink cartridge", attributes={"product type": "1"}))
    assert texts(numbered, "product_type") == ["cartridge"]
    printer = extractor.extract(item("HP LaserJet M9050 600 x 600 DPI 50 ppm", brand="HP"))
    assert texts(printer, "product_type") == ["laserjet"]
    assert not {"dpi", "ppm"} & {e.text for e in printer}
    # A type with no word of two letters in a row is junk; a hyphenated one is not.
    assert canonical_type("16") is canonical_type("1") is None
    assert canonical_type("T-Shirts") == "t-shirt"
    # A counting unit can still be the type's head noun.
    assert texts(extractor.extract(item("Toddler Car Seat")), "product_type") == ["seat"]


def test_phrases_are_short_and_uncovered(extractor):
    entities = extractor.extract(
        item("Royal Doulton Gordon Ramsay Block Knife Set, 6 Piece", brand="Royal Doulton", category=("Knife Block Sets",))
    )
    phrases = texts(entities, "phrase")
    settings = ExtractionSettings()
    assert phrases and len(phrases) <= settings.max_phrases + settings.max_model_names
    assert "gordon ramsay" in phrases
    assert all(len(p.split()) <= 2 and "royal" not in p and "6" not in p for p in phrases)


def test_model_names_are_kept_as_phrases_beside_the_others(extractor):
    # A code with the name word before it; after the brand, the code alone; a name and a short number.
    printer = extractor.extract(item("HP Photosmart C6380 Inkjet Printer", brand="HP"))
    assert "photosmart c6380" in texts(printer, "phrase")
    scanner = extractor.extract(item("Brother DS-940DW Sheet-fed Scanner", brand="Brother"))
    assert "ds-940dw" in texts(scanner, "phrase")
    console = extractor.extract(item("Sony PlayStation 4 Console, 500 GB", brand="Sony"))
    assert "playstation 4" in texts(console, "phrase")
    # The model name is one more phrase: the other phrases stay.
    knives = extractor.extract(item("Gordon Ramsay Knife Block Tx500", category=("Knife Block Sets",)))
    phrases = texts(knives, "phrase")
    assert "gordon ramsay" in phrases and [p for p in phrases if p.endswith("tx500")]
    # Only one per item by default, and none when the setting is 0.
    remote = extractor.extract(item("Alexa Voice Remote X100 Y200"))
    assert [p for p in texts(remote, "phrase") if any(c.isdigit() for c in p)] == ["x100"]
    off = EntityExtractor(dataclasses.replace(ExtractionSettings(), max_model_names=0), VOCABULARY)
    assert not any(any(c.isdigit() for c in p) for p in texts(off.extract(item("HP Photosmart C6380")), "phrase"))


@pytest.mark.parametrize(
    "title",
    [
        "Alexa Voice Remote 2020",  # a year, after a name word
        "Alexa Voice Remote 2nd Gen",  # an ordinal
        "Dell Gaming Monitor 144hz",  # a measure written as one token
        "Sony Bravia Television 1080p",
        "Canon Camera Body 24mp",
        "Seagate Desktop Drive 7200rpm",
        "Stoneware Coffee Mug 12oz",
        "Crew Sock Bundle 1pk",
        "Wooden Picture Frame 8x10",
        "Fleece Hoodie Sweatshirt 3xl",
        "Netgear Wi-Fi 6 Router",  # half of a hyphenated word is no name word
    ],
)
def test_model_names_are_not_years_ordinals_measures_or_word_halves(extractor, title):
    assert not any(any(c.isdigit() for c in p) for p in texts(extractor.extract(item(title)), "phrase"))


def test_description_only_when_stated(extractor):
    stated = extractor.extract(item("Bexley Sofa", description="Deep seats. Made of velvet, shown in navy blue."))
    assert texts(stated, "material") == ["velvet"]
    assert texts(stated, "color") == ["navy blue"]
    mentioned = extractor.extract(item("A Thriller Novel", description="The devil in the white city, a glass house."))
    assert texts(mentioned, "color") == texts(mentioned, "material") == []
    off = EntityExtractor(ExtractionSettings(use_description=False), VOCABULARY)
    assert texts(off.extract(item("Bexley Sofa", description="Made of velvet.")), "material") == []


def test_empty_item_gives_nothing(extractor):
    assert extractor.extract(item("")) == []
    assert extractor.extract(item("   \u200b ")) == []
    assert extractor.extract_many([]) == []


def test_one_per_type_order_and_normal_form(extractor):
    entities = extractor.extract(
        item("Acme Zeta Red Blue Green Yellow Cotton Wool Silk Chair, Large, 2 Pack, 12 oz", brand="Acme")
    )
    assert len(texts(entities, "product_type")) <= 1 and len(texts(entities, "brand")) == 1
    order = list(EntityType)
    assert entities == sorted(entities, key=lambda e: (order.index(e.type), e.text))
    assert len(set(entities)) == len(entities)
    assert all(e.text == normalize(e.text) and e.text for e in entities)


def test_cap_on_entities(extractor):
    title = "Acme Women's Red Blue Green Cotton Wool Waterproof Wireless Office Chair, Large, 2 Pack, 12 oz"
    full = extractor.extract(item(title))
    assert len(full) > 3
    capped = EntityExtractor(ExtractionSettings(max_entities_per_item=3), VOCABULARY).extract(item(title))
    assert len(capped) == 3
    assert [e.type for e in capped][:2] == [EntityType.PRODUCT_TYPE, EntityType.BRAND]
    assert set(capped) <= set(full)


def test_extract_many_equals_extract_and_is_deterministic(extractor):
    items = [
        item("UGG Women's Dakota Slipper, Chestnut, 7 M US"),
        item("Acme Leather Office Chair with Arms", color="Black/Red", category=("Furniture", "Office Chairs")),
        item(""),
        item("Hydro Flask 32 oz Wide Mouth Water Bottle", description="Made of stainless steel."),
        item("Zeta Men's Running Shoes - Size 10, Navy", attributes={"material": "mesh"}),
    ] * 3
    many = extractor.extract_many(items, progress=True)
    assert many == [extractor.extract(i) for i in items]
    # A second extractor built from a reshuffled catalog gives the same result.
    shuffled = CATALOG[:]
    random.Random(1).shuffle(shuffled)
    again = EntityExtractor(ExtractionSettings(), Vocabulary.learn(shuffled))
    assert again.extract_many(items) == many


@settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=80), brand=st.text(max_size=12), color=st.text(max_size=12))
def test_odd_unicode_never_crashes(extractor, title, brand, color):
    entities = extractor.extract(item(title, brand=brand, color=color, description=title))
    assert len(entities) <= ExtractionSettings().max_entities_per_item
    assert all(e.text and e.text == normalize(e.text) for e in entities)


def test_odd_unicode_examples(extractor):
    for title in (
        "\ud800Chair\u202e\ufeff",
        "🪑🪑 Stühle – Größe XL",
        "Ｒｅｄ　Ｃｈａｉｒ",
        "\x00\x01 -- ,,, ((",
        "Lee Womenâ€s Pant",
    ):
        extractor.extract(item(title, description=title, color=title))
    assert texts(extractor.extract(item("Ｒｅｄ Ｃｈａｉｒ")), "color") == ["red"]


def test_missing_model_is_named():
    with pytest.raises(RuntimeError, match="no_such_model_xyz"):
        EntityExtractor(dataclasses.replace(ExtractionSettings(), spacy_model="no_such_model_xyz"), VOCABULARY)
