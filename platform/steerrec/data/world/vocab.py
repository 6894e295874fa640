"""The world's vocabulary: categories, their attributes and values, brands and phrasing.

An attribute value is a word or short phrase that appears verbatim in titles,
descriptions, reviews and preference statements ("fragrance-free", "over-ear"), so
that an LLM reading the text can recover it. Its key is ``category.attribute=value``
("skincare.scent=fragrance-free").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]
    mention: str  # noun phrase after "the" in reviews and descriptions: "{v} finish"
    statement: str  # what a preference asks for: "skincare with a {v} finish"

    def mention_of(self, value: str) -> str:
        return self.mention.format(v=value)

    def statement_of(self, value: str) -> str:
        return self.statement.format(v=value)


@dataclass(frozen=True)
class Category:
    name: str  # key prefix: "skincare"
    path: tuple[str, ...]  # the items' `categories`: ("Beauty & Personal Care", "Skin Care")
    noun: str  # what an item is called in a title, unless `noun_attribute` names it
    attributes: tuple[Attribute, ...]
    brands: tuple[str, ...]
    lines: tuple[str, ...]  # product-line words for titles
    price: float  # typical price in dollars
    titles: tuple[str, ...]  # templates over {brand}, {line}, {noun} and attribute names
    intros: tuple[str, ...]  # first sentence of a description
    noun_attribute: str | None = None  # the attribute whose value names the item ("serum")

    def attribute_keys(self) -> list[list[str]]:
        """keys[a][v] = "category.attribute=value"."""
        return [[f"{self.name}.{a.name}={v}" for v in a.values] for a in self.attributes]


CATEGORIES: tuple[Category, ...] = (
    Category(
        name="skincare",
        path=("Beauty & Personal Care", "Skin Care"),
        noun="moisturizer",
        noun_attribute="type",
        attributes=(
            Attribute("type", ("moisturizer", "serum", "cleanser", "sunscreen", "face oil"), "{v}", "{v}s"),
            Attribute(
                "scent",
                ("fragrance-free", "lavender-scented", "citrus-scented", "rose-scented"),
                "{v} formula",
                "{v} skincare",
            ),
            Attribute("texture", ("gel", "cream", "balm", "lotion"), "{v} texture", "skincare with a {v} texture"),
            Attribute("finish", ("matte", "dewy", "satin"), "{v} finish", "skincare with a {v} finish"),
        ),
        brands=("Lumera", "Dermally", "Velvetine", "Oakmoss Lab", "Clearwell"),
        lines=("Daily", "Hydra", "Pure", "Calm", "Glow", "Barrier"),
        price=19.0,
        titles=(
            "{brand} {line} {scent} {texture} {type}",
            "{brand} {type} - {finish} finish, {scent}",
            "{brand} {line} {type} ({texture}, {scent})",
            "{scent} {type} by {brand}, {finish} finish",
        ),
        intros=(
            "A {type} made for everyday routines.",
            "Our {line} {type} keeps skin comfortable from morning to night.",
            "Meet the {type} from {brand}'s {line} range.",
        ),
    ),
    Category(
        name="headphones",
        path=("Electronics", "Headphones"),
        noun="headphones",
        attributes=(
            Attribute("form", ("over-ear", "on-ear", "in-ear"), "{v} design", "{v} headphones"),
            Attribute("connection", ("wireless", "wired"), "{v} connection", "{v} headphones"),
            Attribute("sound", ("bass-heavy", "balanced", "bright"), "{v} sound", "headphones with a {v} sound"),
            Attribute("colour", ("black", "white", "navy", "silver"), "{v} colour", "{v} headphones"),
        ),
        brands=("Sonora", "Decibelle", "Auralink", "Nordtone", "Hushwave"),
        lines=("Studio", "Go", "Pro", "Air", "Pulse", "Echo"),
        price=89.0,
        titles=(
            "{brand} {line} {connection} {form} headphones, {colour}",
            "{brand} {line} {form} headphones - {sound} sound",
            "{connection} {form} headphones by {brand} ({colour})",
            "{brand} {line}: {sound} {connection} headphones",
        ),
        intros=(
            "Headphones tuned for long listening sessions.",
            "The {brand} {line} is built for commutes, desks and everything between.",
            "Music, calls and podcasts with the {line} series.",
        ),
    ),
    Category(
        name="board_games",
        path=("Toys & Games", "Board Games"),
        noun="board game",
        attributes=(
            Attribute("players", ("solo", "two-player", "party-size"), "{v} format", "{v} board games"),
            Attribute("style", ("cooperative", "competitive"), "{v} gameplay", "{v} board games"),
            Attribute(
                "theme", ("fantasy", "sci-fi", "farming", "historical"), "{v} theme", "board games with a {v} theme"
            ),
            Attribute("rules", ("simple", "moderate", "complex"), "{v} rule set", "board games with {v} rules"),
        ),
        brands=("Meeple Forge", "Tabletop Tide", "Dicewright", "Cardinal Games", "Hexhaven"),
        lines=("Starfall", "Harvest Moon", "Iron Crown", "Lantern Bay", "Wyrmhold", "Red Orbit"),
        price=39.0,
        titles=(
            "{line}: a {style} {theme} board game",
            "{brand} {line} - {players} {theme} game",
            "{line} ({players}, {rules} rules) by {brand}",
            "{brand} presents {line}, {style} board game",
        ),
        intros=(
            "Gather around the table for {line}.",
            "{line} brings a fresh twist to game night.",
            "A {theme} adventure from {brand}.",
        ),
    ),
    Category(
        name="coffee",
        path=("Grocery", "Coffee"),
        noun="coffee",
        attributes=(
            Attribute("roast", ("light", "medium", "dark"), "{v} roast", "{v} roast coffee"),
            Attribute("origin", ("Ethiopian", "Colombian", "Sumatran", "Brazilian"), "{v} origin", "{v} coffee"),
            Attribute("form", ("whole-bean", "pre-ground", "pod"), "{v} format", "{v} coffee"),
            Attribute(
                "flavour", ("chocolatey", "fruity", "nutty", "smoky"), "{v} flavour", "coffee with a {v} flavour"
            ),
        ),
        brands=("Bean & Bough", "Kaldi's Kettle", "Morning Ridge", "Roastery 9", "Crema Co."),
        lines=("House Blend", "Sunrise", "Highland", "Reserve", "Night Owl", "Origins"),
        price=14.0,
        titles=(
            "{brand} {line} {origin} coffee, {roast} roast, {form}",
            "{origin} {roast} roast coffee - {flavour} notes ({form})",
            "{brand} {line}: {form} {origin} coffee",
            "{line} {flavour} coffee by {brand}, {roast} roast",
        ),
        intros=(
            "Small-batch coffee roasted to order.",
            "The {line} from {brand} is a cup worth waking up for.",
            "Sourced from {origin} growers and roasted with care.",
        ),
    ),
    Category(
        name="running_shoes",
        path=("Sports & Outdoors", "Running Shoes"),
        noun="running shoes",
        attributes=(
            Attribute("terrain", ("road", "trail", "track"), "{v} outsole", "{v} running shoes"),
            Attribute(
                "cushioning", ("plush", "responsive", "minimal"), "{v} cushioning", "running shoes with {v} cushioning"
            ),
            Attribute("fit", ("narrow", "regular", "wide"), "{v} fit", "running shoes with a {v} fit"),
            Attribute("colour", ("black", "white", "neon", "grey"), "{v} colourway", "{v} running shoes"),
        ),
        brands=("Stridewell", "Kinetik", "Trailhound", "Paceline", "Northrun"),
        lines=("Glide", "Tempo", "Summit", "Rush", "Drift", "Apex"),
        price=109.0,
        titles=(
            "{brand} {line} {terrain} running shoes, {colour}",
            "{brand} {line} - {cushioning} {terrain} runner ({fit} fit)",
            "{terrain} running shoes by {brand}: {line}, {colour}",
            "{brand} {line} {fit}-fit running shoes",
        ),
        intros=(
            "Made for runners who log real miles.",
            "The {line} from {brand} keeps you moving mile after mile.",
            "Lace up the {line} and go.",
        ),
    ),
)


def lookup(key: str) -> tuple[Category, Attribute, str]:
    """The category, attribute and value of a key "category.attribute=value"."""
    found = _BY_KEY.get(key)
    if found is None:
        raise KeyError(f"unknown world attribute key {key!r}")
    return found


_BY_KEY: dict[str, tuple[Category, Attribute, str]] = {
    f"{c.name}.{a.name}={v}": (c, a, v) for c in CATEGORIES for a in c.attributes for v in a.values
}
