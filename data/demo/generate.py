"""Generate entrel's demo dataset: an invented catalog, a query log and graded labels.

Stdlib only and driven by one seeded RNG, so ``python data/demo/generate.py``
rewrites catalog.csv, query_log.csv and labels.csv byte-identically (no set of
strings is ever iterated: their order changes with PYTHONHASHSEED).

Every product is generated from ground-truth attributes that stay in memory;
the text columns are rendered from them with noise (structured columns left
empty, colors only in the description, surface variants such as "Grey" or
"32oz"). Labels are graded from those attributes and from each query's spec,
never by matching text, so they are right by construction.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20240917
HERE = Path(__file__).resolve().parent

# Dimensions a product type may have besides brand and color, in the order
# they are written in the attributes column.
DIMS = ("material", "size", "audience", "style", "connectivity", "quantity")
SINGLE = "single"  # quantity of a product sold alone: never written or queried

COLORS = (
    "black", "white", "gray", "light gray", "navy blue", "sky blue", "red", "burgundy",
    "green", "olive green", "beige", "brown", "pink", "purple", "yellow", "teal",
)  # fmt: skip


@dataclass(frozen=True)
class TypeSpec:
    """One product type: its vocabulary, value ranges and share of the catalog."""

    name: str
    category: str  # path above the leaf; an "{audience}" level is dropped for unisex products
    leaf: str
    share: int  # products of this type before anchors are added
    brands: tuple[str, ...]
    models: tuple[str, ...]
    colors: tuple[str, ...]
    dims: dict[str, tuple[str, ...]]
    nouns: tuple[str, ...]  # title nouns; the first is the canonical one
    query_nouns: tuple[str, ...]  # how users name the type; the first is canonical
    vary: tuple[str, ...]  # dims that differ between variants of a model (repeat = likelier)
    adjectives: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    blurbs: tuple[str, ...] = ()
    size_phrase: str = "size {v}"
    # Sizes read before the noun ("32 oz water bottle"), not after ("..., size 8").
    size_first: bool = True
    plural_nouns: tuple[str, ...] = ()
    sizes_by_audience: dict[str, tuple[str, ...]] = field(default_factory=dict)


# fmt: off
TYPES = (
    # Main types, most searched first (the order of the head of the query log).
    TypeSpec(
        name="office chair", category="Furniture > Home Office", leaf="Office Chairs", share=46,
        brands=("Acme", "Ergonix", "Seatwell", "Hollis & Reed", "Corvell"),
        models=("ErgoPro", "Summit", "FlexBack", "Contour", "Aero", "Meridian", "Pivot", "Apex", "Tasker"),
        colors=("black", "white", "gray", "navy blue", "red", "burgundy", "brown", "beige"),
        dims={"material": ("leather", "mesh", "fabric")},
        nouns=("Office Chair", "Desk Chair", "Task Chair", "Executive Office Chair", "Computer Chair"),
        query_nouns=("office chair", "office chairs", "desk chair", "computer chair", "desk chairs"),
        vary=("color", "color", "color", "material"),
        adjectives=("Ergonomic", "High-Back", "Mid-Back", "Swivel"),
        features=("with Lumbar Support", "with Adjustable Armrests", "with Headrest", "with Flip-Up Arms"),
        blurbs=(
            "Adjustable seat height and tilt tension for long work days.",
            "Smooth-rolling casters and a 5-star base rated to 275 lb.",
            "Tool-free assembly in about 15 minutes.",
        ),
    ),
    TypeSpec(
        name="running shoes", category="Clothing, Shoes & Jewelry > {audience} > Shoes", leaf="Running Shoes", share=48,
        brands=("Stride", "Vantix", "Pacerun", "Kestro", "Fleetfoot"),
        models=("AirGlide", "Tempo", "Velocity", "Cloudrun", "Swift", "Ridge", "Surge", "Pacer 3"),
        colors=("black", "white", "gray", "navy blue", "red", "pink", "purple", "sky blue", "teal", "yellow",
                "olive green"),
        dims={"material": ("mesh", "knit"), "audience": ("women", "men", "kids"), "size": ()},
        nouns=("Running Shoes", "Road Running Shoes", "Trail Running Shoes", "Running Sneakers"),
        query_nouns=("running shoes", "running shoe", "sneakers", "jogging shoes"),
        vary=("color", "color", "size", "size", "audience", "material"),
        adjectives=("Lightweight", "Cushioned", "Breathable"),
        blurbs=(
            "Responsive foam midsole with a grippy rubber outsole.",
            "A padded collar and tongue keep long runs comfortable.",
            "Reflective details for early-morning runs.",
        ),
        size_phrase="US size {v}",
        size_first=False,
        sizes_by_audience={
            "women": ("6", "7", "8", "9", "10"),
            "men": ("8", "9", "10", "11", "12"),
            "kids": ("1", "2", "3", "4", "5"),
        },
    ),
    TypeSpec(
        name="backpack", category="Luggage & Bags", leaf="Backpacks", share=42,
        brands=("Acme", "Stride", "Kestro", "Trailmark", "Campora"),
        models=("Voyager", "Commuter", "Metro", "Explorer", "Scout", "Campus", "Drift"),
        colors=("black", "gray", "navy blue", "red", "green", "olive green", "pink", "purple", "brown", "teal",
                "beige"),
        dims={"material": ("polyester", "nylon", "canvas", "leather"), "size": ("20 l", "25 l", "30 l", "40 l"),
              "audience": ("women", "men", "kids", "unisex")},
        nouns=("Backpack", "Laptop Backpack", "Travel Backpack", "Daypack"),
        query_nouns=("backpack", "backpacks", "rucksack", "day pack"),
        vary=("color", "color", "size", "material", "audience"),
        adjectives=("Water-Resistant", "Lightweight", "Anti-Theft"),
        features=("with Laptop Sleeve", "with USB Charging Port", "with Bottle Pockets"),
        blurbs=(
            "Padded sleeve fits most 15.6-inch laptops.",
            "Breathable back panel and adjustable shoulder straps.",
            "Plenty of pockets to keep small things organised.",
        ),
        size_phrase="{v} capacity",
    ),
    TypeSpec(
        name="water bottle", category="Sports & Outdoors > Hydration", leaf="Water Bottles", share=44,
        brands=("Stride", "Kestro", "Trailmark", "Hydrava", "Nordhaven"),
        models=("Flow", "Summit", "Chill", "Trek", "Pure", "Everyday", "Glacier"),
        colors=("black", "white", "navy blue", "sky blue", "teal", "pink", "purple", "red", "green", "olive green",
                "yellow", "gray"),
        dims={"material": ("stainless steel", "plastic", "glass"), "size": ("20 oz", "24 oz", "32 oz", "40 oz")},
        nouns=("Water Bottle", "Sports Water Bottle", "Water Bottle", "Sports Bottle"),
        query_nouns=("water bottle", "water bottles", "drink bottle", "sports bottle"),
        vary=("color", "color", "color", "size", "size", "material"),
        adjectives=("Leak-Proof", "BPA-Free", "Reusable"),
        features=("with Straw Lid", "with Carry Handle", "with Time Marker"),
        blurbs=(
            "Leak-proof lid and a wide mouth for ice cubes.",
            "Dishwasher-safe parts and a sweat-free grip.",
            "Fits most car cup holders.",
        ),
        size_phrase="holds {v}",
    ),
    TypeSpec(
        name="headphones", category="Electronics > Audio", leaf="Headphones", share=42,
        brands=("Acme", "Sonora", "Auralis", "Tonewell", "Quillon"),
        models=("SoundMax", "Pulse", "Studio", "Echo", "Nimbus", "Vibe", "Aria"),
        colors=("black", "white", "gray", "navy blue", "pink", "sky blue", "red", "beige"),
        dims={"style": ("over-ear", "on-ear", "in-ear"), "connectivity": ("wireless", "wired")},
        nouns=("Headphones",),
        query_nouns=("headphones", "headphone", "headset"),
        vary=("color", "color", "connectivity", "style"),
        adjectives=("Noise Cancelling", "Foldable", "Hi-Fi"),
        features=("with Microphone", "with 40-Hour Battery", "with Carrying Case"),
        blurbs=(
            "Deep bass from 40 mm drivers.",
            "Built-in microphone for calls.",
            "Soft memory-foam cushions for all-day listening.",
        ),
        size_phrase="{v}",
    ),
    TypeSpec(
        name="t-shirt", category="Clothing, Shoes & Jewelry > {audience} > Clothing", leaf="T-Shirts", share=46,
        brands=("Stride", "Vantix", "Pacerun", "Threadline", "Cottonwick"),
        models=("Essential", "CoolFlex", "Everyday", "Heritage", "Core", "Classic"),
        colors=("black", "white", "gray", "light gray", "navy blue", "red", "burgundy", "green", "olive green",
                "pink", "purple", "yellow", "sky blue"),
        dims={"material": ("cotton", "polyester", "bamboo"), "size": ("small", "medium", "large", "xl"),
              "audience": ("women", "men", "kids", "unisex"), "quantity": (SINGLE, "pack of 3")},
        nouns=("T-Shirt", "Crew Neck T-Shirt", "Tee", "Short Sleeve T-Shirt"),
        plural_nouns=("T-Shirts", "Crew Neck T-Shirts", "Tees"),
        query_nouns=("t-shirt", "t shirt", "tshirt", "t-shirts", "tee", "tees", "t shirts"),
        vary=("color", "color", "size", "size", "audience", "material"),
        adjectives=("Soft", "Relaxed Fit", "Slim Fit", "Moisture-Wicking"),
        blurbs=(
            "Tagless neck label and double-stitched hems.",
            "Pre-shrunk so it keeps its fit wash after wash.",
            "A wardrobe staple for layering or on its own.",
        ),
        size_first=False,
    ),
    TypeSpec(
        name="coffee mug", category="Home & Kitchen > Kitchen & Dining", leaf="Coffee Mugs", share=42,
        brands=("Nordhaven", "Hydrava", "Brewnook", "Kiln & Co", "Potterly"),
        models=("Morning", "Cafe", "Diner", "Classic", "Nordic", "Stack", "Sunrise"),
        colors=("white", "black", "gray", "navy blue", "sky blue", "teal", "red", "green", "pink", "yellow", "beige"),
        dims={"material": ("ceramic", "glass", "stainless steel"), "size": ("12 oz", "16 oz"),
              "quantity": (SINGLE, "set of 2", "set of 4")},
        nouns=("Coffee Mug", "Mug", "Coffee Cup"),
        plural_nouns=("Coffee Mugs", "Mugs"),
        query_nouns=("coffee mug", "coffee mugs", "mug", "mugs", "coffee cup"),
        vary=("color", "color", "quantity", "size", "material"),
        adjectives=("Microwave Safe", "Dishwasher Safe", "Handmade"),
        features=("with Handle", "with Lid"),
        blurbs=(
            "Microwave and dishwasher safe.",
            "A comfortable handle and a wide base that won't tip.",
            "Great for coffee, tea or hot chocolate.",
        ),
        size_phrase="holds {v}",
    ),
    TypeSpec(
        name="yoga mat", category="Sports & Outdoors > Yoga", leaf="Yoga Mats", share=42,
        brands=("Stride", "Vantix", "Lotusa", "Zenfold", "Kestro"),
        models=("Balance", "Flow", "Zen", "Grip", "Align", "Lotus", "Ground"),
        colors=("purple", "pink", "sky blue", "teal", "black", "gray", "green", "olive green", "navy blue", "beige"),
        dims={"material": ("rubber", "tpe", "pvc", "cork"), "size": ("4 mm", "6 mm", "8 mm")},
        nouns=("Yoga Mat", "Exercise Mat", "Yoga Mat", "Yoga & Pilates Mat"),
        query_nouns=("yoga mat", "yoga mats", "exercise mat", "workout mat"),
        vary=("color", "color", "size", "material"),
        adjectives=("Non-Slip", "Reversible", "Eco-Friendly"),
        features=("with Carrying Strap", "with Alignment Lines"),
        blurbs=(
            "Non-slip texture on both sides.",
            "Cushions knees and wrists on hard floors.",
            "Rolls up small and comes with a strap.",
        ),
        size_phrase="{v} thick",
    ),
    TypeSpec(
        name="sofa", category="Furniture > Living Room", leaf="Sofas", share=40,
        brands=("Seatwell", "Hollis & Reed", "Corvell", "Nordhaven", "Oakline"),
        models=("Harlow", "Monroe", "Ellis", "Bexley", "Carlton", "Ashby", "Lennox", "Wren"),
        colors=("gray", "light gray", "beige", "navy blue", "green", "olive green", "brown", "burgundy", "teal",
                "black"),
        dims={"material": ("leather", "fabric", "velvet", "linen"), "size": ("2 seater", "3 seater", "4 seater")},
        nouns=("Sofa", "Couch", "Sofa Couch"),
        query_nouns=("sofa", "couch", "sofas", "couches"),
        vary=("color", "color", "material", "size"),
        adjectives=("Mid-Century Modern", "Tufted", "Upholstered", "Track Arm"),
        features=("with Removable Cushions", "with Solid Wood Legs"),
        blurbs=(
            "Kiln-dried hardwood frame with pocket-coil seat cushions.",
            "Arrives in two boxes; legs screw on without tools.",
            "Deep seats and plush back pillows for lounging.",
        ),
        size_phrase="a {v} layout",
    ),
    TypeSpec(
        name="desk lamp", category="Home & Kitchen > Lighting", leaf="Desk Lamps", share=38,
        brands=("Acme", "Ergonix", "Lumora", "Brightfold", "Nordhaven", "Oakline"),
        models=("Arc", "Halo", "Beam", "Nova", "Orbit", "Lumen", "Vega"),
        colors=("black", "white", "gray", "brown", "navy blue", "green", "pink", "yellow", "teal"),
        dims={"material": ("metal", "wood", "bamboo", "plastic")},
        nouns=("Desk Lamp", "LED Desk Lamp", "Task Lamp", "Desk Light"),
        query_nouns=("desk lamp", "desk lamps", "desk light", "study lamp"),
        vary=("color", "color", "material"),
        adjectives=("Dimmable", "Adjustable", "Swing Arm", "Minimalist"),
        features=("with USB Charging Port", "with 5 Brightness Levels", "with Touch Control"),
        blurbs=(
            "Eye-caring LED with no flicker.",
            "The arm and head pivot to aim light where you need it.",
            "Weighted base keeps it steady on any desk.",
        ),
    ),
    # Complements: graded 1 (related) for queries about the type they go with.
    TypeSpec(
        name="chair mat", category="Office Products > Furniture Accessories", leaf="Chair Mats", share=14,
        brands=("Acme", "Ergonix", "FloorShield"),
        models=("FloorGuard", "ClearStep", "RollEase"),
        colors=(),
        dims={"material": ("pvc", "polycarbonate", "glass"), "size": ("36 x 48 in", "46 x 60 in")},
        nouns=("Chair Mat", "Office Chair Mat", "Desk Chair Mat"),
        query_nouns=("chair mat", "office chair mat", "chair mats"),
        vary=("size", "material"),
        adjectives=("Clear", "Heavy Duty"),
        features=("for Carpet", "for Hard Floors"),
        blurbs=("Protects floors from chair casters.", "Lies flat out of the box."),
        size_phrase="measures {v}",
    ),
    TypeSpec(
        name="yoga block", category="Sports & Outdoors > Yoga", leaf="Yoga Blocks", share=14,
        brands=("Vantix", "Lotusa", "Zenfold"),
        models=("Support", "Steady", "Foundation"),
        colors=("purple", "black", "gray", "beige", "brown", "teal"),
        dims={"material": ("foam", "cork", "wood"), "quantity": (SINGLE, "set of 2")},
        nouns=("Yoga Block",),
        plural_nouns=("Yoga Blocks",),
        query_nouns=("yoga block", "yoga blocks"),
        vary=("color", "material", "quantity"),
        adjectives=("Lightweight", "High Density"),
        blurbs=("Beveled edges for a comfortable grip.", "Helps with balance and alignment in every pose."),
    ),
)
# fmt: on
TYPE = {t.name: t for t in TYPES}
COMPLEMENTS = ("chair mat", "yoga block")

# Types that relate (complement or near type): graded 1 for each other.
RELATED = {
    "office chair": ("chair mat",),
    "chair mat": ("office chair",),
    "yoga mat": ("yoga block",),
    "yoga block": ("yoga mat",),
    "coffee mug": ("water bottle",),
    "water bottle": ("coffee mug",),
}

# Nouns that state a value on their own: "Earbuds" are in-ear headphones.
VALUE_NOUNS = {
    ("headphones", "style", "in-ear"): (("Earbuds", "Earphones", "In-Ear Headphones"), ("earbuds", "earphones")),
    ("sofa", "size", "2 seater"): (("Loveseat",), ("loveseat",)),
}

AUDIENCE_WORDS = {"women": "Women", "men": "Men", "kids": "Kids"}


def _title_forms(dim: str, value: str) -> tuple[str, ...]:
    """How a value may be written in a title (the first is the column form)."""
    forms = {
        ("color", "gray"): ("Gray", "Grey"),
        ("color", "light gray"): ("Light Gray", "Light Grey"),
        ("color", "navy blue"): ("Navy Blue", "Navy"),
        ("material", "stainless steel"): ("Stainless Steel", "Insulated Stainless Steel"),
        ("material", "mesh"): ("Mesh", "Breathable Mesh"),
        ("material", "leather"): ("Leather", "Genuine Leather"),
        ("material", "rubber"): ("Natural Rubber", "Rubber"),
        ("material", "wood"): ("Wood", "Wooden"),
        ("material", "cotton"): ("Cotton", "100% Cotton"),
        ("material", "glass"): ("Glass", "Borosilicate Glass"),
        ("material", "plastic"): ("Plastic", "BPA-Free Plastic"),
        ("material", "foam"): ("Foam", "EVA Foam"),
        ("audience", "women"): ("Women's",),
        ("audience", "men"): ("Men's",),
        ("audience", "kids"): ("Kids'",),
        ("connectivity", "wireless"): ("Wireless", "Bluetooth", "Wireless Bluetooth"),
        ("quantity", "pack of 3"): ("3-Pack", "Pack of 3"),
        ("quantity", "set of 2"): ("Set of 2", "2-Pack"),
        ("quantity", "set of 4"): ("Set of 4", "4-Pack"),
        ("size", "xl"): ("XL", "X-Large"),
        ("size", "2 seater"): ("2-Seater", "2 Seat"),
        ("size", "3 seater"): ("3-Seater", "3 Seat"),
        ("size", "4 seater"): ("4-Seater", "4 Seat"),
        ("size", "36 x 48 in"): ("36 x 48 in", "36x48 Inch"),
        ("size", "46 x 60 in"): ("46 x 60 in", "46x60 Inch"),
    }.get((dim, value))
    if forms:
        return forms
    if value in ("tpe", "pvc"):
        return (value.upper(),)
    if value.endswith(" oz"):
        n = value.split()[0]
        return (f"{n} oz", f"{n}oz", f"{n} Oz")
    if value.endswith(" l"):
        n = value.split()[0]
        return (f"{n}L", f"{n} L", f"{n} Liter")
    if value.endswith(" mm"):
        n = value.split()[0]
        return (f"{n}mm", f"{n} mm", f"{n}mm Thick")
    if dim == "size" and value.isdigit():
        return (f"Size {value}",)
    return (value.title(),)


def _query_forms(dim: str, value: str) -> tuple[str, ...]:
    """How users type a value (the first is canonical)."""
    forms = {
        ("color", "gray"): ("gray", "grey"),
        ("color", "light gray"): ("light gray", "light grey"),
        ("color", "navy blue"): ("navy blue", "navy"),
        ("color", "sky blue"): ("sky blue", "light blue"),
        ("color", "olive green"): ("olive green", "olive"),
        ("material", "stainless steel"): ("stainless steel", "stainless", "steel"),
        ("material", "wood"): ("wood", "wooden"),
        ("audience", "women"): ("womens", "women's", "women", "ladies"),
        ("audience", "men"): ("mens", "men's", "men"),
        ("audience", "kids"): ("kids", "kids'"),
        ("style", "over-ear"): ("over ear", "over-ear"),
        ("style", "on-ear"): ("on ear", "on-ear"),
        ("style", "in-ear"): ("in ear", "in-ear"),
        ("connectivity", "wireless"): ("wireless", "bluetooth"),
        ("quantity", "pack of 3"): ("3 pack", "pack of 3"),
        ("quantity", "set of 2"): ("set of 2", "2 pack"),
        ("quantity", "set of 4"): ("set of 4", "4 pack"),
        ("size", "xl"): ("xl", "extra large"),
        ("size", "2 seater"): ("2 seater", "two seater"),
        ("size", "3 seater"): ("3 seater", "3-seater"),
        ("size", "36 x 48 in"): ("36 x 48", "36x48"),
        ("size", "46 x 60 in"): ("46 x 60", "46x60"),
    }.get((dim, value))
    if forms:
        return forms
    if value.endswith(" oz"):
        n = value.split()[0]
        return (value, f"{n}oz", f"{n} ounce")
    if value.endswith(" l"):
        n = value.split()[0]
        return (f"{n}l", value, f"{n} liter")
    if value.endswith(" mm"):
        return (value.replace(" ", ""), value)
    if dim == "size" and value.isdigit():
        return (f"size {value}",)
    return (value,)


# --------------------------------------------------------------------------- catalog

ANCHORS_PER_QUERY = 2  # exact items every hand-written "match" query gets at least
# Share of rows whose structured column is left empty; the value is still in the text.
BLANK_SHARE = {"brand": 0.35, "color": 0.35, "attributes": 0.5, "category": 0.1}


@dataclass
class Product:
    """A product's ground truth; the CSV row is rendered from it."""

    type: str
    brand: str
    model: str
    attrs: dict[str, str]  # "color" and the type's dims
    item_id: str = ""

    def key(self) -> tuple[str, ...]:
        return (self.type, self.brand, self.model, *(f"{k}={v}" for k, v in sorted(self.attrs.items())))


def _choices(spec: TypeSpec, dim: str, attrs: dict[str, str]) -> tuple[str, ...]:
    if dim == "color":
        return spec.colors
    if dim == "size" and spec.sizes_by_audience:
        return spec.sizes_by_audience[attrs["audience"]]
    return spec.dims[dim]


def _pick(rng: random.Random, spec: TypeSpec, dim: str, attrs: dict[str, str]) -> str:
    values = _choices(spec, dim, attrs)
    if dim == "quantity" and rng.random() < 0.6:
        return SINGLE  # most products are sold alone
    return rng.choice(values)


def _base_attrs(rng: random.Random, spec: TypeSpec) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if spec.colors:
        attrs["color"] = rng.choice(spec.colors)
    for dim in DIMS:  # audience before size: shoe sizes depend on it
        if dim in spec.dims and dim != "size":
            attrs[dim] = _pick(rng, spec, dim, attrs)
    if "size" in spec.dims:
        attrs["size"] = _pick(rng, spec, "size", attrs)
    return attrs


def _variant(rng: random.Random, spec: TypeSpec, base: dict[str, str]) -> dict[str, str]:
    """The base model changed in one attribute (two when a shoe size is invalid for the new audience)."""
    dim = rng.choice(spec.vary)
    attrs = dict(base)
    attrs[dim] = rng.choice([v for v in _choices(spec, dim, attrs) if v != base[dim]])
    if "size" in attrs and attrs["size"] not in _choices(spec, "size", attrs):
        attrs["size"] = rng.choice(_choices(spec, "size", attrs))
    return attrs


def make_products(rng: random.Random) -> list[Product]:
    """Models of each type, each in several variants that differ in one attribute."""
    products: list[Product] = []
    for spec in TYPES:
        typed: list[Product] = []
        seen: set[tuple[str, ...]] = set()  # membership only: never iterated
        lines: list[tuple[str, str]] = []
        while len(typed) < spec.share:
            brand = spec.brands[len(lines) % len(spec.brands)]
            model = rng.choice([m for m in spec.models if (brand, m) not in lines])
            lines.append((brand, model))
            base = _base_attrs(rng, spec)
            for attrs in [base] + [_variant(rng, spec, base) for _ in range(rng.randint(2, 5))]:
                product = Product(spec.name, brand, model, attrs)
                if product.key() not in seen and len(typed) < spec.share:
                    seen.add(product.key())
                    typed.append(product)
        products.extend(typed)
    return products


def _add_anchors(rng: random.Random, products: list[Product]) -> int:
    """Give every hand-written "match" query two exact items: copies of the closest products, values set."""
    keys = {p.key() for p in products}  # membership only: never iterated
    added = 0
    for query in HAND_QUERIES:
        if query.expect != "match" or query.type is None:
            continue
        wants = dict(query.wants)
        exact = sum(grade(query, p)[0] == 3 for p in products)
        pool = [p for p in products if p.type == query.type and wants.get("brand", p.brand) == p.brand]
        for base in sorted(pool, key=lambda p: (grade(query, p)[1], rng.random())):
            if exact >= ANCHORS_PER_QUERY:
                break
            attrs = dict(base.attrs)
            attrs.update({d: v for d, v in wants.items() if d != "brand"})
            anchor = Product(base.type, base.brand, base.model, attrs)
            if anchor.key() not in keys:
                keys.add(anchor.key())
                products.append(anchor)
                exact += 1
                added += 1
    return added


@dataclass(frozen=True)
class Template:
    """A title layout: head words, then a tail list after `sep`."""

    head: tuple[str, ...]
    tail: tuple[str, ...]
    sep: str = ", "
    by_brand: bool = False  # "... by Brand" instead of the brand first


# fmt: off
TEMPLATES = (
    # Acme ErgoPro Red Leather Office Chair with Lumbar Support
    Template(("brand", "model", "audience", "color", "size", "material", "adj", "conn", "style", "noun", "feat"),
             ("quantity",)),
    # Stride Women's Tempo Mesh Running Shoes, Navy Blue, Size 8
    Template(("brand", "audience", "model", "adj", "material", "conn", "style", "noun"), ("color", "size", "quantity")),
    # Hollis & Reed Harlow 3-Seater Sofa - Velvet, Olive Green
    Template(("brand", "model", "size", "adj", "audience", "conn", "style", "noun", "feat"),
             ("material", "color", "quantity"), sep=" - "),
    # Tempo Women's Mesh Running Shoes by Stride (Black, Size 9)
    Template(("model", "audience", "conn", "material", "style", "noun", "feat"), ("color", "size", "quantity"),
             sep=" (", by_brand=True),
    # Kiln & Co Set of 4 Ceramic Coffee Mugs with Handle, 16 oz, Sky Blue
    Template(("brand", "quantity", "adj", "audience", "material", "conn", "style", "noun", "feat"),
             ("size", "color", "model")),
    # Sonora Aria Black Wireless Over-Ear Headphones, Foldable
    Template(("brand", "model", "color", "audience", "size", "conn", "style", "material", "noun"), ("adj", "quantity")),
)
# fmt: on


def _render_title(rng: random.Random, spec: TypeSpec, parts: dict[str, str]) -> str:
    tpl = rng.choice(TEMPLATES)
    head, tail = list(tpl.head), list(tpl.tail)
    if not spec.size_first and "size" in head:  # "Size 8" and "Large" read last
        head.remove("size")
        tail.insert(0, "size")
    words = [parts[k] for k in head if parts.get(k)]
    title = " ".join(words)
    if tpl.by_brand:
        title += f" by {parts['brand']}"
    rest = [parts[k] for k in tail if parts.get(k)]
    if rest:
        joined = ", ".join(rest)
        title += f" ({joined})" if tpl.sep == " (" else f"{tpl.sep}{joined}"
    return title


def _sentence(fragments: list[str]) -> str:
    text = ", ".join(fragments)
    return text[0].upper() + text[1:] + "."


def _mention(rng: random.Random, spec: TypeSpec, dim: str, value: str) -> str:
    """A description fragment stating one attribute."""
    if dim == "color":
        return rng.choice(("shown in {v}", "finished in {v}", "color: {v}")).format(v=value)
    if dim == "material":
        return rng.choice(("made of {v}", "built from {v}", "{v} construction")).format(v=value)
    if dim == "size":
        return spec.size_phrase.format(v=value)
    if dim == "audience":
        return "unisex fit" if value == "unisex" else f"designed for {value}"
    if dim == "style":
        return f"{value} design"
    if dim == "connectivity":
        return "bluetooth 5.3 wireless connection" if value == "wireless" else "wired 3.5 mm plug"
    return value  # quantity


def render_row(rng: random.Random, product: Product, blank: frozenset[str]) -> dict[str, str]:
    """The CSV row of a product: a noisy, partly structured rendering of its ground truth.

    `blank` names the structured columns left empty in this row (see BLANK_SHARE).
    """
    spec = TYPE[product.type]
    attrs = product.attrs
    plural = attrs.get("quantity", SINGLE) != SINGLE
    parts = {"brand": product.brand, "model": product.model if rng.random() < 0.85 else ""}
    in_title: dict[str, bool] = {}
    nouns = spec.plural_nouns if plural and spec.plural_nouns else spec.nouns
    parts["noun"] = rng.choice(nouns)
    for (type_, dim, value), (title_nouns, _) in VALUE_NOUNS.items():
        if type_ == spec.name and attrs.get(dim) == value and rng.random() < 0.6:
            parts["noun"] = rng.choice(title_nouns)
            in_title[dim] = True
    keep = {
        "color": 0.85,
        "material": 0.7,
        "size": 0.75,
        "audience": 0.9,
        "style": 1.0,
        "connectivity": 0.9,
        "quantity": 1.0,
    }
    for dim, value in attrs.items():
        if value == SINGLE or in_title.get(dim):
            continue
        in_title[dim] = rng.random() < keep[dim]
        if in_title[dim]:
            parts[{"connectivity": "conn"}.get(dim, dim)] = rng.choice(_title_forms(dim, value))
    if rng.random() < 0.4 and spec.adjectives:
        parts["adj"] = rng.choice(spec.adjectives)
    if rng.random() < 0.4 and spec.features:
        parts["feat"] = rng.choice(spec.features)
    title = _render_title(rng, spec, parts)

    color = attrs.get("color", "")
    color_col = _title_forms("color", color)[0] if color and "color" not in blank else ""
    brand_col = "" if "brand" in blank else product.brand
    written = [(d, v) for d, v in attrs.items() if d != "color" and v != SINGLE]
    attributes = "; ".join(f"{d}: {v}" for d, v in written) if written and "attributes" not in blank else ""

    # Whatever is in neither the title nor a structured column goes into the
    # description, so every ground-truth value can be read from the row.
    fragments = []
    for dim, value in attrs.items():
        if value == SINGLE:
            continue
        elsewhere = color_col if dim == "color" else attributes
        if not (in_title.get(dim) or elsewhere) or rng.random() < 0.15:
            fragments.append(_mention(rng, spec, dim, value))
    sentences = []
    if spec.blurbs and (rng.random() < 0.55 or (not fragments and rng.random() < 0.75)):
        sentences.append(rng.choice(spec.blurbs))
    if fragments:
        sentences.append(_sentence(fragments))

    category = ""
    if "category" not in blank:
        audience = AUDIENCE_WORDS.get(attrs.get("audience", ""), "")
        levels = [level.format(audience=audience) for level in spec.category.split(" > ")]
        category = " > ".join([*(level for level in levels if level), spec.leaf])
    return {
        "item_id": product.item_id,
        "title": title,
        "description": " ".join(sentences),
        "brand": brand_col,
        "color": color_col,
        "category": category,
        "attributes": attributes,
    }


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    """A raw query and what it asks for: a type (None: brand only) and stated values."""

    text: str
    type: str | None
    wants: tuple[tuple[str, str], ...]  # (dim, canonical value), dim may be "brand"
    tier: int  # popularity class: 0 = head ... 5 = tail
    expect: str = ""  # "match": must have an exact item; "none": must have none


def _q(text: str, type_: str | None, tier: int, expect: str = "", **wants: str) -> Query:
    return Query(text, type_, tuple(sorted(wants.items())), tier, expect)


# Hand-written queries: head needs, paraphrase groups, brands, misses and typos.
HAND_QUERIES = (
    # paraphrases of one need
    _q("red leather office chair", "office chair", 2, "match", color="red", material="leather"),
    _q("office chair red leather", "office chair", 3, "match", color="red", material="leather"),
    _q("red leather desk chair", "office chair", 3, "match", color="red", material="leather"),
    _q("leather office chair in red", "office chair", 4, "match", color="red", material="leather"),
    _q("womens running shoes size 8", "running shoes", 2, "match", audience="women", size="8"),
    _q("women's running shoes size 8", "running shoes", 3, "match", audience="women", size="8"),
    _q("running shoes women size 8", "running shoes", 4, "match", audience="women", size="8"),
    _q("ladies sneakers size 8", "running shoes", 4, "match", audience="women", size="8"),
    _q("32 oz stainless steel water bottle", "water bottle", 2, "match", material="stainless steel", size="32 oz"),
    _q("stainless steel water bottle 32oz", "water bottle", 3, "match", material="stainless steel", size="32 oz"),
    _q("32oz stainless water bottle", "water bottle", 4, "match", material="stainless steel", size="32 oz"),
    _q("steel water bottle 32 ounce", "water bottle", 4, "match", material="stainless steel", size="32 oz"),
    _q("wireless earbuds", "headphones", 1, "match", style="in-ear", connectivity="wireless"),
    _q("bluetooth earbuds", "headphones", 2, "match", style="in-ear", connectivity="wireless"),
    _q("wireless in ear headphones", "headphones", 4, "match", style="in-ear", connectivity="wireless"),
    _q("earbuds wireless", "headphones", 4, "match", style="in-ear", connectivity="wireless"),
    _q("black mesh office chair", "office chair", 2, "match", color="black", material="mesh"),
    _q("mesh desk chair black", "office chair", 4, "match", color="black", material="mesh"),
    _q("black mesh computer chair", "office chair", 4, "match", color="black", material="mesh"),
    _q("gray fabric sofa", "sofa", 3, "match", color="gray", material="fabric"),
    _q("grey fabric couch", "sofa", 4, "match", color="gray", material="fabric"),
    _q("fabric sofa in grey", "sofa", 5, "match", color="gray", material="fabric"),
    _q("mens cotton t shirt", "t-shirt", 2, "match", audience="men", material="cotton"),
    _q("cotton t-shirt for men", "t-shirt", 4, "match", audience="men", material="cotton"),
    _q("men's cotton tee", "t-shirt", 4, "match", audience="men", material="cotton"),
    _q("coffee mugs set of 4", "coffee mug", 2, "match", quantity="set of 4"),
    _q("set of 4 coffee mugs", "coffee mug", 3, "match", quantity="set of 4"),
    _q("4 pack coffee mugs", "coffee mug", 4, "match", quantity="set of 4"),
    _q("kids backpack", "backpack", 1, "match", audience="kids"),
    _q("backpack for kids", "backpack", 3, "match", audience="kids"),
    _q("kids backpacks", "backpack", 4, "match", audience="kids"),
    _q("6mm yoga mat", "yoga mat", 2, "match", size="6 mm"),
    _q("yoga mat 6 mm", "yoga mat", 4, "match", size="6 mm"),
    _q("6 mm exercise mat", "yoga mat", 5, "match", size="6 mm"),
    _q("loveseat", "sofa", 1, "match", size="2 seater"),
    _q("2 seater sofa", "sofa", 3, "match", size="2 seater"),
    _q("two seater couch", "sofa", 5, "match", size="2 seater"),
    _q("over ear headphones", "headphones", 2, "match", style="over-ear"),
    _q("over-ear headphones", "headphones", 3, "match", style="over-ear"),
    _q("headphones over ear", "headphones", 4, "match", style="over-ear"),
    # one stated attribute
    _q("leather office chair", "office chair", 1, "match", material="leather"),
    _q("mesh office chair", "office chair", 1, "match", material="mesh"),
    _q("leather sofa", "sofa", 1, "match", material="leather"),
    _q("velvet sofa", "sofa", 2, "match", material="velvet"),
    _q("wireless headphones", "headphones", 1, "match", connectivity="wireless"),
    _q("bluetooth headphones", "headphones", 1, "match", connectivity="wireless"),
    _q("glass water bottle", "water bottle", 2, "match", material="glass"),
    _q("stainless steel water bottle", "water bottle", 1, "match", material="stainless steel"),
    _q("womens running shoes", "running shoes", 1, "match", audience="women"),
    _q("mens running shoes", "running shoes", 1, "match", audience="men"),
    _q("kids sneakers", "running shoes", 2, "match", audience="kids"),
    _q("womens t shirt", "t-shirt", 2, "match", audience="women"),
    _q("black t shirt", "t-shirt", 1, "match", color="black"),
    _q("black backpack", "backpack", 1, "match", color="black"),
    _q("leather backpack", "backpack", 2, "match", material="leather"),
    _q("glass coffee mug", "coffee mug", 3, "match", material="glass"),
    _q("cork yoga mat", "yoga mat", 2, "match", material="cork"),
    _q("black desk lamp", "desk lamp", 2, "match", color="black"),
    _q("wooden desk lamp", "desk lamp", 3, "match", material="wood"),
    _q("20 oz water bottle", "water bottle", 3, "match", size="20 oz"),
    _q("womens backpack", "backpack", 2, "match", audience="women"),
    # several stated attributes
    _q("mens running shoes size 10", "running shoes", 2, "match", audience="men", size="10"),
    _q("black t shirt large", "t-shirt", 3, "match", color="black", size="large"),
    _q("navy blue backpack 30l", "backpack", 4, "match", color="navy blue", size="30 l"),
    _q("white ceramic coffee mug", "coffee mug", 3, "match", color="white", material="ceramic"),
    _q("purple yoga mat 6mm", "yoga mat", 4, "match", color="purple", size="6 mm"),
    _q("mens t shirts pack of 3", "t-shirt", 3, "match", audience="men", quantity="pack of 3"),
    _q("t shirts 3 pack", "t-shirt", 2, "match", quantity="pack of 3"),
    # brands
    _q("acme office chair", "office chair", 2, "match", brand="Acme"),
    _q("stride running shoes", "running shoes", 2, "match", brand="Stride"),
    _q("hydrava water bottle", "water bottle", 3, "match", brand="Hydrava"),
    _q("sonora headphones", "headphones", 2, "match", brand="Sonora"),
    _q("vantix yoga mat", "yoga mat", 3, "match", brand="Vantix"),
    _q("nordhaven sofa", "sofa", 4, "match", brand="Nordhaven"),
    _q("sonora wireless earbuds", "headphones", 4, "match", brand="Sonora", style="in-ear", connectivity="wireless"),
    _q("stride", None, 2, "match", brand="Stride"),
    _q("acme", None, 3, "match", brand="Acme"),
    _q("hollis and reed", None, 4, "match", brand="Hollis & Reed"),
    # needs the catalog cannot meet exactly
    _q("yellow office chair", "office chair", 3, "none", color="yellow"),
    _q("purple leather sofa", "sofa", 4, "none", color="purple", material="leather"),
    _q("64 oz water bottle", "water bottle", 4, "none", size="64 oz"),
    _q("xxl womens t shirt", "t-shirt", 4, "none", audience="women", size="xxl"),
    _q("orange yoga mat", "yoga mat", 4, "none", color="orange"),
    _q("kids running shoes size 11", "running shoes", 5, "none", audience="kids", size="11"),
    # typos, capitals and stray spaces
    _q("ofice chair", "office chair", 3, ""),
    _q("runing shoes womens", "running shoes", 4, "", audience="women"),
    _q("headphons wireless", "headphones", 4, "", connectivity="wireless"),
    _q("yoga matt", "yoga mat", 4, ""),
    _q("watter bottle 32 oz", "water bottle", 5, "", size="32 oz"),
    _q("cofee mug", "coffee mug", 4, ""),
    _q("Leather Office Chair Black", "office chair", 4, "", color="black", material="leather"),
    _q("Womens Running Shoes Size 7", "running shoes", 4, "", audience="women", size="7"),
    _q("Stainless Steel Water Bottle 24 oz", "water bottle", 5, "", material="stainless steel", size="24 oz"),
    _q("yoga mat  8mm", "yoga mat", 5, "", size="8 mm"),
    _q("black  wireless headphones", "headphones", 4, "", color="black", connectivity="wireless"),
)


def _key(text: str) -> str:
    """A stand-in for entrel.text.normalize on this ASCII data (stdlib only here)."""
    return " ".join(text.lower().split())


def _render_query(rng: random.Random, spec: TypeSpec, wants: dict[str, str]) -> str:
    """A raw query for a type and stated values, in one of several word orders."""
    noun = rng.choice(spec.query_nouns[:3])
    words = dict(wants)
    for (type_, dim, value), (_, query_nouns) in VALUE_NOUNS.items():
        if type_ == spec.name and words.get(dim) == value and rng.random() < 0.6:
            noun = rng.choice(query_nouns)
            del words[dim]
    form = {d: rng.choice(_query_forms(d, v)) if d != "brand" else v.lower() for d, v in words.items()}
    size_after = not spec.size_first or rng.random() < 0.3
    layout = rng.random()
    before = ["brand", "quantity", "audience", "color", "size", "material", "connectivity", "style"]
    after: list[str] = []
    if size_after:
        before.remove("size")
        after.append("size")
    if "quantity" in form and rng.random() < 0.5:
        before.remove("quantity")
        after.append("quantity")
    if layout < 0.2 and "color" in form:  # "leather office chair in red"
        before.remove("color")
        text = " ".join([*(form[k] for k in before if k in form), noun, *(form[k] for k in after if k in form)])
        return f"{text} in {form['color']}"
    if layout < 0.35 and "audience" in form and wants["audience"] != "unisex":  # "backpack for kids"
        before.remove("audience")
        text = " ".join([*(form[k] for k in before if k in form), noun, *(form[k] for k in after if k in form)])
        return f"{text} for {wants['audience']}"
    if layout < 0.55 and "brand" not in form:  # "office chair red leather"
        return " ".join([noun, *(form[k] for k in before + after if k in form)])
    return " ".join([*(form[k] for k in before if k in form), noun, *(form[k] for k in after if k in form)])


def make_queries(rng: random.Random, products: list[Product], total: int) -> list[Query]:
    """Hand-written queries, every name of every type, then queries sampled from real products."""
    queries: list[Query] = []
    seen: set[str] = set()  # membership only: never iterated

    def add(query: Query) -> None:
        if _key(query.text) not in seen:
            seen.add(_key(query.text))
            queries.append(query)

    for query in HAND_QUERIES:
        if _key(query.text) in seen:
            raise AssertionError(f"hand-written query twice: {query.text!r}")
        add(query)
    for spec in TYPES:
        # The canonical name leads; synonyms and complements are searched less.
        for i, noun in enumerate(spec.query_nouns):
            add(Query(noun, spec.name, (), 2 + i if spec.name in COMPLEMENTS else min(i, 2)))
    by_type = {spec.name: [p for p in products if p.type == spec.name] for spec in TYPES}
    main = [spec for spec in TYPES if spec.name not in COMPLEMENTS]
    while len(queries) < total:
        spec = rng.choice(main)
        product = rng.choice(by_type[spec.name])
        dims = [d for d, v in product.attrs.items() if v != SINGLE]
        k = rng.choice((1, 1, 2, 2, 2, 3))
        chosen = rng.sample(dims, min(k, len(dims)))
        wants = {d: product.attrs[d] for d in chosen}
        if rng.random() < 0.2:
            wants["brand"] = product.brand
        add(Query(_render_query(rng, spec, wants), spec.name, tuple(sorted(wants.items())), 1 + len(wants)))
    return queries


def assign_counts(rng: random.Random, queries: list[Query]) -> dict[str, int]:
    """Zipf-like counts: rank by popularity tier, then count ~ 60000 / (rank + 3)^1.8 with noise.

    Within tier 0 (each type's canonical name) the TYPES order holds (the sort
    is stable); other tiers are shuffled.
    """
    order = sorted(queries, key=lambda q: (q.tier, 0.0 if q.tier == 0 else rng.random()))
    counts = {}
    for rank, query in enumerate(order, start=1):
        counts[query.text] = max(1, round(60000 * (rank + 3) ** -1.8 * rng.lognormvariate(0, 0.3)))
    return counts


# --------------------------------------------------------------------------- labels


def grade(query: Query, product: Product) -> tuple[int, int]:
    """(grade, number of stated values the product misses), from ground truth only.

    3 exact: right type and every stated value; 2 substitute: right type, some
    stated value differs; 1 related type (RELATED); 0 irrelevant. A unisex
    product meets a women's or men's query. A brand-only query grades 3 or 0.
    """
    if query.type is not None and product.type != query.type:
        return (1 if product.type in RELATED.get(query.type, ()) else 0), len(query.wants)
    misses = 0
    for dim, value in query.wants:
        have = product.brand if dim == "brand" else product.attrs.get(dim, "")
        if not (have == value or (dim == "audience" and have == "unisex" and value in ("women", "men"))):
            misses += 1
    if misses == 0:
        return 3, 0
    return (2 if query.type is not None else 0), misses


def judge(rng: random.Random, query: Query, products: list[Product]) -> list[tuple[Product, int]]:
    """20-40 judged items: the exact ones (sampled when many), hard negatives, related and random others."""
    graded = [(p, *grade(query, p)) for p in products]
    exact = [p for p, g, _ in graded if g == 3]
    related = [p for p, g, _ in graded if g == 1]
    hard = sorted(((m, rng.random(), p) for p, g, m in graded if g == 2), key=lambda t: (t[0], t[1]))
    other = [p for p, g, _ in graded if g == 0]
    total = rng.randint(24, 36)
    picked: list[tuple[Product, int]] = [(p, 3) for p in rng.sample(exact, min(len(exact), 14))]
    picked += [(p, 1) for p in rng.sample(related, min(len(related), 3))]
    picked += [(p, 2) for _, _, p in hard[: max(0, total - len(picked) - 6)]]
    # Irrelevant items sharing a stated value ("red" sofa for "red office chair") are the hardest zeros.
    values = {v for _, v in query.wants}
    alike = [p for p in other if p.brand in values or values & set(p.attrs.values())]
    n_alike = min(len(alike), (total - len(picked)) // 2)
    zeros = rng.sample(alike, n_alike)
    rest = [p for p in other if p not in zeros]
    zeros += rng.sample(rest, max(0, total - len(picked) - n_alike))
    picked += [(p, 0) for p in zeros]
    return picked


def pick_labelled(rng: random.Random, queries: list[Query], counts: dict[str, int], extra: int) -> list[Query]:
    """The head, every hand-written typed query, and `extra` sampled ones (two thirds with several values)."""
    typed = [q for q in queries if q.type is not None]
    head = sorted(typed, key=lambda q: -counts[q.text])[:12]
    chosen = head + [q for q in typed if q in HAND_QUERIES and q not in head]
    rest = [q for q in typed if q not in chosen]
    multi = [q for q in rest if len(q.wants) >= 2]
    n_multi = min(len(multi), extra * 2 // 3)
    chosen += rng.sample(multi, n_multi)
    chosen += rng.sample([q for q in rest if len(q.wants) < 2], extra - n_multi)
    return sorted(chosen, key=lambda q: (-counts[q.text], q.text))


# --------------------------------------------------------------------------- main


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate(out: Path) -> list[str]:
    """Write the three CSVs into `out`; return summary lines (pasted into README.md)."""
    rng = random.Random(SEED)
    products = make_products(rng)
    anchors = _add_anchors(rng, products)
    rng.shuffle(products)
    for i, product in enumerate(products, start=1):
        product.item_id = f"D{i:04d}"
    n = len(products)
    blanked = {column: set(rng.sample(range(n), round(share * n))) for column, share in BLANK_SHARE.items()}
    rows = [render_row(rng, p, frozenset(c for c in BLANK_SHARE if i in blanked[c])) for i, p in enumerate(products)]

    queries = make_queries(rng, products, total=300)
    counts = assign_counts(rng, queries)
    for query in queries:
        exact = sum(grade(query, p)[0] == 3 for p in products)
        if (query.expect == "match" and not exact) or (query.expect == "none" and exact):
            raise AssertionError(f"{query.text!r}: expected {query.expect}, {exact} exact items")
    labelled = pick_labelled(rng, queries, counts, extra=24)
    judgments = []
    for query in labelled:
        for product, g in sorted(judge(rng, query, products), key=lambda t: (-t[1], t[0].item_id)):
            judgments.append([query.text, product.item_id, str(g)])

    out.mkdir(parents=True, exist_ok=True)
    _write(out / "catalog.csv", list(rows[0]), [list(r.values()) for r in rows])
    log = sorted(queries, key=lambda q: (-counts[q.text], q.text))
    _write(out / "query_log.csv", ["query", "count"], [[q.text, str(counts[q.text])] for q in log])
    _write(out / "labels.csv", ["query", "item_id", "grade"], judgments)

    per_type = Counter(p.type for p in products)
    color_only_in_description = sum(
        1
        for r, p in zip(rows, products, strict=True)
        if "color" in p.attrs
        and not r["color"]
        and not any(f.lower() in r["title"].lower() for f in _title_forms("color", p.attrs["color"]))
    )
    per_query = Counter(j[0] for j in judgments)
    grades = Counter(j[2] for j in judgments)
    return [
        f"catalog.csv: {n} products, {len(per_type)} product types ({anchors} anchor products added)",
        "  per type: " + ", ".join(f"{t.name} {per_type[t.name]}" for t in TYPES),
        f"  empty brand {sum(not r['brand'] for r in rows)}, "
        f"empty color {sum(not r['color'] for r, p in zip(rows, products, strict=True) if 'color' in p.attrs)} "
        f"(of which color only in the description: {color_only_in_description}), "
        f"empty category {sum(not r['category'] for r in rows)}, "
        f"empty attributes {sum(not r['attributes'] for r in rows)}, "
        f"empty description {sum(not r['description'] for r in rows)}",
        f"query_log.csv: {len(queries)} distinct queries, {sum(counts.values())} searches, "
        f"counts {max(counts.values())} .. {min(counts.values())}, "
        f"{sum(c <= 3 for c in counts.values())} queries seen at most 3 times",
        f"labels.csv: {len(judgments)} judgments over {len(per_query)} queries "
        f"({min(per_query.values())} .. {max(per_query.values())} per query)",
        "  grades: " + ", ".join(f"{g}: {grades[g]}" for g in ("3", "2", "1", "0")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: beside this script)")
    for line in generate(parser.parse_args().out):
        print(line)


if __name__ == "__main__":
    main()
