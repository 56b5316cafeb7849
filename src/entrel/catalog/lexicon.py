"""Word lists and inflection for entity extraction.

Each table maps the variants found in catalogs to ONE canonical text, so
"Grey", "gray" and "GREY" all become the entity ``color: gray`` and share
one cached score per query. Lists are deliberately modest: a word that is
often something else in a title ("orange" juice, "mint" toothpaste) is
listed as ambiguous and only trusted where titles name variants.
"""

from __future__ import annotations

from entrel.catalog.entity import EntityType

__all__ = [
    "AMBIGUOUS",
    "APPAREL_SIZES",
    "ATTRIBUTE_KEYS",
    "AUDIENCES",
    "BED_SIZES",
    "BED_WORDS",
    "COLORS",
    "GENERIC_WORDS",
    "JUNK_VALUES",
    "MAIN_PHRASE_STOPS",
    "MATERIALS",
    "NON_TYPE_WORDS",
    "NOUN_UNITS",
    "SIZE_UNITS",
    "SPEC_UNITS",
    "STYLES",
    "singularize",
    "stem",
]


def _table(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """{canonical: variants} as {variant: canonical}; the canonical maps to itself."""
    table: dict[str, str] = {}
    for canonical, variants in groups.items():
        for variant in (canonical, *variants):
            table[variant] = canonical
    return table


COLORS = _table(
    {
        "black": ("jet black", "pure black", "solid black"),
        "matte black": ("black matte", "matt black"),
        "white": ("pure white", "bright white", "snow white"),
        "off white": ("off-white",),
        "warm white": (),
        "red": (),
        "dark red": (),
        "wine red": (),
        "burgundy": (),
        "maroon": (),
        "blue": (),
        "navy blue": ("navy", "dark navy"),
        "royal blue": (),
        "light blue": (),
        "sky blue": (),
        "baby blue": (),
        "dark blue": (),
        "green": (),
        "dark green": ("hunter green", "forest green"),
        "light green": (),
        "olive green": ("army green",),
        "mint green": (),
        "lime green": (),
        "yellow": (),
        "purple": (),
        "violet": (),
        "lavender": ("lilac",),
        "pink": (),
        "hot pink": ("fuchsia", "magenta"),
        "light pink": ("pale pink", "blush pink", "blush"),
        "brown": (),
        "dark brown": (),
        "light brown": (),
        "gray": ("grey",),
        "dark gray": ("dark grey", "charcoal gray", "charcoal grey"),
        "light gray": ("light grey",),
        "beige": (),
        "khaki": (),
        "teal": (),
        "turquoise": (),
        "aqua": ("cyan",),
        "rose gold": (),
        "brushed nickel": ("satin nickel",),
        "chrome": ("polished chrome",),
        "oil rubbed bronze": ("oil-rubbed bronze",),
        "multicolor": (
            "multi",
            "multi-color",
            "multi color",
            "multicolored",
            "multi-colored",
            "multicoloured",
            "assorted",
            "assortment",
            "rainbow",
            "colorful",
            "mixed colors",
        ),
        "clear": ("transparent", "translucent"),
        # Ambiguous in a title (see AMBIGUOUS).
        "orange": (),
        "gold": ("golden",),
        "silver": (),
        "bronze": (),
        "copper": (),
        "brass": (),
        "ivory": (),
        "cream": (),
        "tan": (),
        "camel": (),
        "chestnut": (),
        "charcoal": (),
        "coral": (),
        "peach": (),
        "salmon": (),
        "mint": (),
        "olive": (),
        "sage": (),
        "mustard": (),
        "rust": (),
        "plum": (),
        "wine": (),
        "champagne": (),
        "mocha": (),
        "espresso": (),
        "coffee": (),
        "chocolate": (),
        "nude": (),
        "natural": (),
        "graphite": (),
        "ebony": (),
        "emerald": (),
    }
)

# Color and audience words that are often something else in a title
# ("orange juice", "mint toothpaste", "male to female adapter"): trusted in
# columns and attributes, and in a title only where it names variants
# ("..., Chestnut, 7 M US"). As materials, "copper" and "brass" are trusted.
AMBIGUOUS = frozenset(
    {
        "male", "female", "baby", "babies", "baby's", "transparent", "translucent", "multi", "multi-color", "multi color", "multicolored",
        "multi-colored", "assorted", "rainbow", "polished chrome", "blush",
        "orange", "gold", "silver", "bronze", "copper", "brass", "ivory", "cream", "tan", "camel",
        "chestnut", "charcoal", "coral", "peach", "salmon", "mint", "olive", "sage", "mustard", "rust",
        "plum", "wine", "champagne", "mocha", "espresso", "coffee", "chocolate", "nude", "natural",
        "graphite", "ebony", "emerald", "clear", "chrome", "lavender", "multicolor",
    }
)  # fmt: skip

MATERIALS = _table(
    {
        "cotton": ("100% cotton", "pure cotton"),
        "organic cotton": (),
        "polyester": ("poly",),
        "nylon": (),
        "spandex": ("elastane", "lycra"),
        "rayon": ("viscose",),
        "linen": (),
        "silk": (),
        "wool": (),
        "merino wool": (),
        "cashmere": (),
        "fleece": ("sherpa",),
        "flannel": (),
        "denim": (),
        "leather": ("genuine leather", "real leather", "full grain leather", "top grain leather"),
        "faux leather": ("pu leather", "vegan leather", "leatherette"),
        "suede": (),
        "faux fur": (),
        "velvet": (),
        "satin": (),
        "canvas": (),
        "microfiber": ("microfibre",),
        "acrylic": (),
        "bamboo": (),
        "wood": ("wooden",),
        "solid wood": (),
        "oak": (),
        "pine": (),
        "teak": (),
        "acacia": (),
        "mdf": (),
        "metal": (),
        "steel": (),
        "stainless steel": ("stainless",),
        "carbon steel": (),
        "aluminum": ("aluminium",),
        "iron": (),
        "cast iron": (),
        "wrought iron": (),
        "copper": (),
        "brass": (),
        "titanium": (),
        "sterling silver": ("925 sterling silver",),
        "glass": (),
        "tempered glass": (),
        "crystal": (),
        "ceramic": (),
        "porcelain": (),
        "stoneware": (),
        "melamine": (),
        "plastic": (),
        "silicone": (),
        "rubber": (),
        "latex": (),
        "foam": (),
        "memory foam": (),
        "vinyl": (),
        "pvc": (),
        "carbon fiber": ("carbon fibre",),
        "marble": (),
        "granite": (),
        "paper": (),
        "cardboard": (),
        "cork": (),
        "jute": (),
        "rattan": ("wicker",),
        "mesh": (),
        "knit": ("knitted",),
        "fabric": (),
        "tpe": (),
        "neoprene": (),
        "resin": (),
        "polypropylene": (),
        "polycarbonate": (),
    }
)

AUDIENCES = _table(
    {
        "women": ("women's", "womens", "woman", "woman's", "ladies", "ladies'", "lady", "lady's", "female"),
        "men": ("men's", "mens", "male", "gentlemen"),
        "unisex": ("unisex-adult", "unisex adult"),
        "boys": ("boy", "boy's", "boys'"),
        "girls": ("girl", "girl's", "girls'"),
        "kids": ("kid", "kid's", "kids'", "children", "children's", "child", "child's", "youth", "little kids", "big kids"),
        "teen": ("teens", "teen's", "teenager", "teenagers"),
        "toddler": ("toddlers", "toddler's"),
        "baby": ("babies", "baby's", "infant", "infants", "newborn"),
    }
)

STYLES = _table(
    {
        "waterproof": ("water proof",),
        "water resistant": ("water-resistant",),
        "wireless": (),
        "wired": (),
        "over-ear": ("over ear", "over-the-ear", "over the ear"),
        "on-ear": ("on ear",),
        "in-ear": ("in ear",),
        "bluetooth": (),
        "cordless": (),
        "rechargeable": (),
        "portable": (),
        "foldable": ("folding", "collapsible"),
        "adjustable": (),
        "ergonomic": (),
        "vintage": (),
        "retro": (),
        "modern": (),
        "mid-century modern": ("mid century", "mid-century", "mid century modern"),
        "contemporary": (),
        "casual": (),
        "formal": (),
        "rustic": (),
        "farmhouse": (),
        "industrial": (),
        "minimalist": (),
        "boho": ("bohemian",),
        "non-slip": ("non slip", "nonslip", "anti-slip", "anti slip"),
        "lightweight": (),
        "heavy duty": ("heavy-duty",),
        "organic": (),
        "handmade": ("hand made",),
        "personalized": ("personalised", "customized", "custom"),
        "reusable": (),
        "disposable": (),
        "smart": (),
        "outdoor": (),
        "indoor": (),
        "quick dry": ("quick-dry", "quick drying"),
        "breathable": (),
        "slim fit": (),
        "relaxed fit": (),
        "high waisted": ("high waist", "high-waisted"),
        "long sleeve": ("long-sleeve",),
        "short sleeve": ("short-sleeve",),
        "sleeveless": (),
        "gluten free": ("gluten-free",),
        "sugar free": ("sugar-free",),
        "vegan": (),
        "bpa free": ("bpa-free",),
    }
)

# Unit spellings -> canonical unit; a size entity is "<number> <unit>".
SIZE_UNITS = _table(
    {
        "oz": ("ounce", "ounces"),
        "fl oz": ("floz", "fluid ounce", "fluid ounces"),
        "lb": ("lbs", "pound", "pounds"),
        "kg": ("kgs", "kilogram", "kilograms"),
        "g": ("gram", "grams", "gr"),
        "mg": ("milligram", "milligrams"),
        "mcg": ("microgram", "micrograms"),
        "ml": ("milliliter", "milliliters", "millilitre", "millilitres"),
        "liter": ("l", "liters", "litre", "litres", "ltr"),
        "gallon": ("gallons", "gal"),
        "quart": ("quarts", "qt"),
        "inch": ("inches", "in", '"', "''"),
        "ft": ("foot", "feet"),
        "cm": ("centimeter", "centimeters"),
        "mm": ("millimeter", "millimeters"),
        "watt": ("w", "watts"),
        "volt": ("v", "volts"),
        "mah": (),
        "gb": (),
        "tb": (),
        "pack": ("packs", "pk", "pks"),
        "pair": ("pairs",),
        "seater": ("seat", "seaters"),
        "count": ("ct", "counts"),
        "piece": ("pieces", "pc", "pcs"),
    }
)

APPAREL_SIZES = _table(
    {
        "x-small": ("xs", "x small", "extra small"),
        "small": ("s", "sm"),
        "medium": ("m", "med"),
        "large": ("l", "lg"),
        "x-large": ("xl", "x large", "extra large", "1x"),
        "xx-large": ("xxl", "2xl", "2x", "xx large"),
        "3x-large": ("xxxl", "3xl", "3x", "xxx-large"),
        "4x-large": ("4xl", "4x"),
        "5x-large": ("5xl", "5x"),
        "one size": ("one size fits all", "os"),
    }
)

BED_SIZES = _table(
    {
        "twin": (),
        "twin xl": ("twin-xl",),
        "full": ("double",),
        "queen": (),
        "king": (),
        "california king": ("cal king", "california-king"),
    }
)

# Units that are also things' names ("2 pack", "5 seater"; "hydration pack", "car seat"): a title's last
# word may be one of them as its product type.
NOUN_UNITS = frozenset({"pack", "pair", "seater", "count", "piece"})

# Units of electronics specs ("600 x 600 dpi", "2.4 ghz"): never a product type, though a title's last word.
SPEC_UNITS = frozenset({"dpi", "ppm", "hz", "khz", "mhz", "ghz", "mbps", "gbps", "rpm", "mp", "nm", "lm", "db"})

# Words after a bed size that make it a size ("queen mattress").
BED_WORDS = frozenset(
    {"bed", "mattress", "sheet", "sheets", "comforter", "duvet", "quilt", "bedspread", "frame",
     "headboard", "blanket", "topper", "pad", "protector", "size", "box", "platform"}
)  # fmt: skip

# Attribute keys (normalised) -> the entity type their value is.
ATTRIBUTE_KEYS: dict[str, EntityType] = {
    **dict.fromkeys(("material", "materials", "fabric", "fabric type", "material type"), EntityType.MATERIAL),
    **dict.fromkeys(
        ("size", "sizes", "capacity", "volume", "pack", "pack size", "count", "quantity", "weight", "dimensions"),
        EntityType.SIZE,
    ),
    **dict.fromkeys(("gender", "department", "audience", "target audience", "age group"), EntityType.AUDIENCE),
    **dict.fromkeys(("style", "pattern", "finish type", "connectivity", "feature", "features"), EntityType.STYLE),
    **dict.fromkeys(("color", "colour", "colors", "colours", "color name"), EntityType.COLOR),
    **dict.fromkeys(("brand", "brand name", "manufacturer"), EntityType.BRAND),
    **dict.fromkeys(("type", "product type", "item type", "product_type", "item_type"), EntityType.PRODUCT_TYPE),
}

# Too vague to be a product type or a phrase on their own.
GENERIC_WORDS = frozenset(
    {
        # packaging and catalog words
        "accessory", "accessories", "part", "parts", "supply", "supplies", "product", "products", "item", "items",
        "other", "more", "essential", "essentials", "set", "sets", "kit", "kits", "pack", "packs", "piece",
        "pieces", "bundle", "combo", "gift", "gifts", "size", "sizes", "color", "colors", "colour", "style",
        "styles", "design", "type", "version", "edition", "model", "series", "unit", "units", "count", "pcs", "pc",
        "inch", "inches", "brand", "logo", "variety", "alternative", "gen", "generation", "amazon", "official",
        # marketing adjectives
        "quality", "grade", "premium", "professional", "new", "best", "great", "perfect", "ideal", "super", "ultra",
        "extra", "deluxe", "upgraded", "upgrade", "original", "authentic", "genuine", "bonus", "free", "pro",
        "plus", "max", "mini", "cute", "funny", "beautiful", "nice", "good", "fashion", "novelty", "sexy",
        "stylish", "durable", "easy", "unique", "special", "specialty", "classic", "basic", "standard", "regular",
        "natural", "pure", "real", "true", "inspired", "approved", "certified",
        # quantities, dimensions, time
        "one", "two", "three", "x", "multi", "multiple", "various", "assorted", "value", "bulk", "total", "full",
        "half", "double", "single", "long", "short", "high", "low", "large", "small", "medium", "big", "little",
        "day", "year", "time", "everyday", "daily", "weekly", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec",
        # other fillers
        "use", "home", "way", "lot", "us", "usa", "made", "include", "includes", "including", "compatible", "fit",
        "fits", "person", "persons", "people", "adult", "adults",
    }
)  # fmt: skip

# A category segment ending in one of these is not a product type
# ("Shoes > Athletic > Basketball", "Clothing > Women").
NON_TYPE_WORDS = frozenset(
    {
        "women", "men", "boys", "girls", "baby", "kids", "unisex", "adults", "juniors", "teens", "toddlers",
        "basketball", "baseball", "football", "soccer", "golf", "tennis", "running", "hiking", "camping",
        "fishing", "cycling", "yoga", "fitness", "swimming", "training", "walking", "skateboarding", "skiing",
        "hunting", "boating", "climbing", "athletic", "casual", "formal", "dress", "fashion", "novelty",
        "programmable", "specialty", "traditional", "electric", "manual", "digital", "new", "used", "shops",
        "store", "brands", "collection", "collections", "department",
    }
)  # fmt: skip

# Title words that end the main noun phrase: what follows describes use or fit.
MAIN_PHRASE_STOPS = frozenset({"with", "for", "w/", "compatible", "fits", "fit", "including", "includes", "featuring"})

# Column values that say nothing (kept out of entities).
JUNK_VALUES = frozenset(
    {
        "", "n/a", "na", "none", "null", "nan", "unknown", "generic", "unbranded", "no brand", "other", "default",
        "standard", "original", "original version", "as shown", "as picture", "as pictured", "see description",
        "see picture", "one color", "multiple", "various", "not applicable", "does not apply", "-", "no", "yes",
        "limited edition", "new", "mix", "single",
    }
)  # fmt: skip

# Plural-only nouns: their singular is themselves ("pants", not "pant").
_PLURALE_TANTUM = frozenset(
    {
        "pants", "jeans", "leggings", "shorts", "tights", "trousers", "slacks", "sweatpants", "joggers",
        "overalls", "pajamas", "pyjamas", "briefs", "boxers", "trunks", "chinos", "capris", "suspenders",
        "sunglasses", "glasses", "eyeglasses", "goggles", "scissors", "pliers", "tongs", "tweezers",
        "binoculars", "clothes",
    }
)  # fmt: skip
# Singular words that merely end in "s".
_INVARIANT = frozenset(
    {"news", "series", "species", "electronics", "athletics", "aerobics", "lens", "canvas", "atlas", "chassis",
     "bus", "gas", "plus", "yes", "bias", "lotus", "cactus", "hummus", "asparagus", "citrus", "octopus", "pilates"}
)  # fmt: skip
_IRREGULAR = {
    "knives": "knife", "wives": "wife", "lives": "life", "shelves": "shelf", "leaves": "leaf", "scarves": "scarf",
    "halves": "half", "loaves": "loaf", "wolves": "wolf", "calves": "calf", "elves": "elf", "thieves": "thief",
    "feet": "foot", "teeth": "tooth", "geese": "goose", "mice": "mouse", "children": "child", "people": "person",
    "lenses": "lens", "potatoes": "potato", "tomatoes": "tomato",
    "heroes": "hero", "echoes": "echo", "mangoes": "mango", "cacti": "cactus", "dice": "die", "buses": "bus",
}  # fmt: skip
# "-ies" plurals whose singular ends in "-ie", not "-y".
_IE_SINGULARS = frozenset(
    {"hoodie", "cookie", "beanie", "bootie", "onesie", "movie", "pie", "tie", "brownie", "smoothie", "selfie",
     "zombie", "rookie", "veggie", "calorie", "goalie", "footie", "necktie", "bowtie", "cutie", "genie", "pixie",
     "lingerie", "panty"}
)  # fmt: skip


def _strip_plural(word: str) -> str:
    """The regular singular of `word`, ignoring plural-only nouns."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in _INVARIANT or len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is", "'s")):
        return word
    if word.endswith("ies"):
        return word[:-1] if word[:-1] in _IE_SINGULARS else word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    return word[:-1]


def singularize(word: str) -> str:
    """The singular of a lowercase English noun, for canonical entity texts.

    >>> [singularize(w) for w in ("slippers", "batteries", "hoodies", "boxes", "pants", "knives")]
    ['slipper', 'battery', 'hoodie', 'box', 'pants', 'knife']
    """
    return word if word in _PLURALE_TANTUM else _strip_plural(word)


def stem(word: str) -> str:
    """A matching key: singular and plural (even of plural-only nouns) share it.

    "pant" and "pants", "womens" and "women", "glass" and "glasses" get one
    key, so a title matches a lexicon or vocabulary entry in either number.
    """
    if word.endswith("'s") and len(word) > 2:
        word = word[:-2]
    return _strip_plural(word.rstrip("'"))
