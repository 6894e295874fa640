"""Readers of public formats: real files against their PROVENANCE.md counts, and small
files written here in the documented format where no real file exists."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import dataset_dir
from steerrec.data.readers import FORMATS, get_reader
from steerrec.data.readers.base import BadRow, Location

INTERACTION_KEYS = {"user_id", "item_id", "timestamp", "rating", "review_text", "review_summary"}
ITEM_KEYS = {"item_id", "title", "brand", "categories", "price", "description", "extra"}


@dataclass
class Tally:
    rows: int = 0
    bad: list[tuple[Location, BadRow]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def distinct(self, key: str) -> int:
        return len({r[key] for r in self.records})


def tally(rows, keys: set[str] | None = None) -> Tally:
    out = Tally()
    for location, record in rows:
        assert isinstance(location, Location)
        out.rows += 1
        if isinstance(record, BadRow):
            out.bad.append((location, record))
        else:
            if keys is not None:
                assert keys <= set(record), f"{location}: {sorted(record)}"
            out.records.append(record)
    return out


def day(timestamp: int) -> date:
    return datetime.fromtimestamp(timestamp, UTC).date()


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


# ---- real data: counts from each folder's PROVENANCE.md -----------------------------
# (folder, format, reviews file, rows, users, items, duplicate (user,item) rows,
#  rows with non-empty reviewText, first day, last day, rating distribution)
AMAZON = [
    (
        "amazon2014_musical_instruments_5core",
        "amazon2014",
        "reviews_Musical_Instruments_5.json.gz",
        10261,
        1429,
        900,
        0,
        10254,
        date(2004, 9, 18),
        date(2014, 7, 22),
        {1.0: 217, 2.0: 250, 3.0: 772, 4.0: 2084, 5.0: 6938},
    ),
    (
        "amazon2018_all_beauty_5core",
        "amazon2018",
        "All_Beauty_5.json.gz",
        5269,
        991,
        85,
        1177,
        5264,
        date(2004, 9, 21),
        date(2018, 8, 23),
        {1.0: 115, 2.0: 64, 3.0: 109, 4.0: 332, 5.0: 4649},
    ),
    (
        "amazon2018_magazine_subscriptions_5core",
        "amazon2018",
        "Magazine_Subscriptions_5.json.gz",
        2375,
        348,
        157,
        73,
        2374,
        date(2001, 11, 12),
        date(2018, 5, 20),
        {1.0: 102, 2.0: 118, 3.0: 239, 4.0: 375, 5.0: 1541},
    ),
]


@pytest.mark.parametrize("case", AMAZON, ids=[c[0] for c in AMAZON])
def test_amazon_reviews_match_provenance(case):
    folder, fmt, name, rows, users, items, duplicates, with_text, first, last, ratings = case
    reader = get_reader(fmt, str(dataset_dir(folder) / name))
    got = tally(reader.interactions(), INTERACTION_KEYS)
    assert got.bad == []
    assert (got.rows, got.distinct("user_id"), got.distinct("item_id")) == (rows, users, items)
    pairs = {(r["user_id"], r["item_id"]) for r in got.records}
    assert got.rows - len(pairs) == duplicates  # kept: dedup is the ingest's job
    assert sum(1 for r in got.records if r["review_text"]) == with_text
    stamps = [r["timestamp"] for r in got.records]
    assert (day(min(stamps)), day(max(stamps))) == (first, last)
    assert Counter(r["rating"] for r in got.records) == ratings
    assert all(set(r) == INTERACTION_KEYS for r in got.records)  # style/vote/verified dropped
    assert list(reader.items()) == []  # no metadata file given


def test_amazon2018_metadata_matches_provenance():
    folder = dataset_dir("amazon2018_magazine_subscriptions_5core")
    reader = get_reader(
        "amazon2018",
        str(folder / "Magazine_Subscriptions_5.json.gz"),
        str(folder / "meta_Magazine_Subscriptions.json.gz"),
    )
    got = tally(reader.items(), ITEM_KEYS)
    assert got.bad == []
    assert (got.rows, got.distinct("item_id")) == (3385, 2320)  # repeated rows kept
    reviewed = {r["item_id"] for _, r in reader.interactions()}
    by_item = {r["item_id"]: r for r in got.records}
    assert len(reviewed & set(by_item)) == 151  # "with_meta"
    assert sum(1 for i in reviewed if i in by_item and by_item[i]["categories"]) == 145
    example = by_item["B00005N7NQ"]  # PROVENANCE's example row
    assert example["title"] is None  # its title is only a cut HTML tag
    assert example["brand"] == "Reason Magazine"
    assert example["categories"][:2] == ["Magazine Subscriptions", "Professional & Educational Journals"]
    assert example["description"].startswith("REASON is edited for people interested in economic")
    assert example["extra"]["details"]["Publisher:"] == "Reason Magazine"
    assert example["extra"]["main_cat"] == "Magazine Subscriptions"
    titles = [r["title"] for r in got.records if r["title"]]
    assert titles and not any("<" in t or "/>" in t or "&amp;" in t for t in titles)
    assert reader.files() == [
        str(folder / "Magazine_Subscriptions_5.json.gz"),
        str(folder / "meta_Magazine_Subscriptions.json.gz"),
    ]


LCREC = [
    # (folder, stem, users, items, interactions, items with non-empty description, max len)
    ("lcrec_amazon2018_office", "Office", 4905, 2420, 53258, 1781, 94),
    ("lcrec_amazon2018_scientific", "Scientific", 8317, 4344, 58492, 4221, 78),
]


@pytest.mark.parametrize("case", LCREC, ids=[c[0] for c in LCREC])
def test_lcrec_matches_provenance(case):
    folder, stem, users, items, interactions, described, longest = case
    path = dataset_dir(folder)
    for input in (str(path), str(path / f"{stem}.inter.json")):  # folder or inter.json
        assert get_reader("lcrec", input).files() == [str(path / f"{stem}.inter.json"), str(path / f"{stem}.item.json")]
    reader = get_reader("lcrec", str(path))
    assert reader.synthetic_timestamps and not reader.implicit_feedback
    got = tally(reader.interactions(), INTERACTION_KEYS)
    assert got.bad == []
    assert (got.rows, got.distinct("user_id"), got.distinct("item_id")) == (interactions, users, items)
    sequences: dict[str, list[int]] = {}
    for r in got.records:
        sequences.setdefault(r["user_id"], []).append(r["timestamp"])
    assert all(s == list(range(1, len(s) + 1)) for s in sequences.values())  # strictly increasing
    assert max(len(s) for s in sequences.values()) == longest
    assert got.records[0] == {
        "user_id": "0",
        "item_id": "0",
        "timestamp": 1,
        "rating": None,
        "review_text": None,
        "review_summary": None,
    }
    catalog = tally(reader.items(), ITEM_KEYS)
    assert catalog.bad == [] and catalog.rows == catalog.distinct("item_id") == items
    assert sum(1 for r in catalog.records if r["description"]) == described
    assert {r["item_id"] for r in got.records} <= {r["item_id"] for r in catalog.records}


def test_lcrec_item_text_and_categories():
    office = tally(get_reader("lcrec", str(dataset_dir("lcrec_amazon2018_office"))).items()).records
    scientific = tally(get_reader("lcrec", str(dataset_dir("lcrec_amazon2018_scientific"))).items()).records
    assert office[0]["categories"] == ["Office Electronics", "Telephones & Accessories", "Cordless Telephones"]
    assert office[2]["title"] == "AT&T 210 Corded Phone, Black, 1 Handset"  # "AT&amp;T" in the file
    # Scientific joins with a bare ","; its ", " belongs to the name
    caliper = next(r for r in scientific if "Test, Measure & Inspect" in r["categories"])
    assert caliper["categories"][0] == "Industrial & Scientific"
    assert scientific[0]["brand"] == "Sealed Unit Parts Co., Inc."


def test_movielens_100k_matches_provenance():
    reader = get_reader("movielens", str(dataset_dir("movielens_100k")))
    assert reader.variant == "ml-100k"
    got = tally(reader.interactions(), INTERACTION_KEYS)
    assert got.bad == []
    assert (got.rows, got.distinct("user_id"), got.distinct("item_id")) == (100000, 943, 1682)
    stamps = [r["timestamp"] for r in got.records]
    assert (day(min(stamps)), day(max(stamps))) == (date(1997, 9, 20), date(1998, 4, 22))
    assert got.records[0] == {
        "user_id": "196",
        "item_id": "242",
        "timestamp": 881250949,
        "rating": 3.0,
        "review_text": None,
        "review_summary": None,
    }
    items = tally(reader.items(), ITEM_KEYS)
    assert items.bad == [] and items.rows == items.distinct("item_id") == 1682
    toy = items.records[0]
    assert (toy["item_id"], toy["title"]) == ("1", "Toy Story (1995)")
    assert toy["categories"] == ["Animation", "Children's", "Comedy"]
    assert toy["extra"]["release_date"] == "01-Jan-1995"
    assert items.records[266]["categories"] == []  # item 267: only the "unknown" flag


def test_steam_games_match_provenance():
    reader = get_reader("steam", str(dataset_dir("steam_games_meta")))
    got = tally(reader.items(), ITEM_KEYS)
    # 32135 rows; 32133 have `id` (32132 distinct). One more row has no `id` but its store
    # url names app 200260 (already among the ids); the last row has neither: a bad row.
    assert got.rows == 32135 and len(got.records) == 32134
    assert [(b.reason, b.field) for _, b in got.bad] == [("missing_field", "id")]
    assert got.distinct("item_id") == 32132
    kitty = got.records[0]  # PROVENANCE's example
    assert kitty["item_id"] == "761140" and kitty["title"] == "Lost Summoner Kitty"
    assert kitty["brand"] == "Kotoshiro" and kitty["price"] == 4.99
    assert kitty["categories"] == ["Action", "Casual", "Indie", "Simulation", "Strategy"]
    assert kitty["extra"]["release_date"] == "2018-01-04" and kitty["extra"]["discount_price"] == 4.49
    assert sum(1 for r in got.records if r["price"] == 0.0) >= 905 + 520 + 462  # Free / Free to Play
    json.dumps([r["extra"] for r in got.records])  # extra must serialize
    with pytest.raises(ValueError, match="no Steam review file"):
        next(reader.interactions())


def test_registry_lists_every_format():
    assert set(FORMATS) == {"amazon2014", "amazon2018", "amazon2023", "lcrec", "movielens", "steam"}
    with pytest.raises(ValueError, match="needs an input path"):
        get_reader("amazon2018", None)


# ---- documented formats with no real file here ---------------------------------------
def test_amazon2014_metadata_python_literals(tmp_path):
    meta = write_gz(
        tmp_path / "meta_Toys.json.gz",
        [
            "{'asin': '0000031852', 'title': 'Girls Ballet Tutu Zebra Hot Pink', 'price': 3.17, "
            "'imUrl': 'http://ecx.images-amazon.com/images/I/51fAmVkTbyL._SY300_.jpg', "
            "'related': {'also_bought': ['B00JHONN1S', 'B002BZX8Z6']}, 'salesRank': {'Toys & Games': 211836}, "
            "'brand': 'Coxlure', 'categories': [['Sports & Outdoors', 'Other Sports', 'Dance'], "
            "['Clothing, Shoes & Jewelry', 'Girls'], ['Sports & Outdoors', 'Other Sports']]}",
            "{'asin': '0000032034', 'description': u'A tutu for \\xe9t\\xe9', 'categories': [['Toys & Games']]}",
        ],
    )
    reader = get_reader("amazon2014", str(tmp_path / "reviews.json"), str(meta))
    tutu, plain = tally(reader.items(), ITEM_KEYS).records
    assert tutu["categories"] == ["Sports & Outdoors", "Other Sports", "Dance", "Clothing, Shoes & Jewelry", "Girls"]
    assert (tutu["title"], tutu["brand"], tutu["price"]) == ("Girls Ballet Tutu Zebra Hot Pink", "Coxlure", 3.17)
    assert tutu["extra"]["salesRank"] == {"Toys & Games": 211836} and "imUrl" in tutu["extra"]
    assert plain == {
        "item_id": "0000032034",
        "title": None,
        "brand": None,
        "categories": ["Toys & Games"],
        "price": None,
        "description": "A tutu for été",
        "extra": {},
    }


def test_amazon2018_metadata_prices_and_html(tmp_path):
    rows = [
        {
            "asin": "A1",
            "title": "Tom &amp; Jerry<br/> Mug",
            "price": "$12.99",
            "category": ["Home", "</span></span></span>"],
            "description": ["<b>Big</b> mug.", "Holds tea."],
            "brand": "Acme",
            "rank": ["1 in Home"],
            "feature": ["Ceramic"],
        },
        {"asin": "A2", "title": "Lamp", "price": "$1,299.00", "category": [], "description": [], "main_cat": "Home"},
        {"asin": "A3", "title": "Set", "price": "$10.99 - $20.99"},
        {"asin": "A4", "title": "Pen", "price": ""},
    ]
    meta = tmp_path / "meta.json"
    meta.write_text("\n".join(json.dumps(r) for r in rows))  # plain text: no gzip magic
    got = tally(get_reader("amazon2018", str(tmp_path / "r.json"), str(meta)).items(), ITEM_KEYS).records
    assert [r["price"] for r in got] == [12.99, 1299.0, None, None]
    assert got[0]["title"] == "Tom & Jerry Mug" and got[0]["categories"] == ["Home"]
    assert got[0]["description"] == "Big mug. Holds tea."
    assert got[0]["extra"] == {"rank": ["1 in Home"], "feature": ["Ceramic"]}
    assert got[1]["extra"] == {"main_cat": "Home"}
    assert got[2]["extra"] == {"price": "$10.99 - $20.99"}  # unparsed price kept as it was


def test_amazon2023_reviews_and_metadata(tmp_path):
    review = {
        "rating": 5.0,
        "title": "Such a lovely scent",
        "text": "This spray is really nice.",
        "images": [],
        "asin": "B00YQ6X8EO",
        "parent_asin": "B00YQ6X8EP",
        "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ",
        "timestamp": 1588687728923,
        "helpful_vote": 0,
        "verified_purchase": True,
    }
    meta = {
        "main_category": "All Beauty",
        "title": "Howard LC0008 Leather Conditioner, 8-Ounce (4-Pack)",
        "average_rating": 4.8,
        "rating_number": 10,
        "features": ["Conditions leather"],
        "description": ["Restores.", "Protects."],
        "price": None,
        "images": [],
        "videos": [],
        "store": "Howard Products",
        "categories": ["Beauty", "Skin Care"],
        "details": {"UPC": "617390882781"},
        "parent_asin": "B00YQ6X8EP",
        "bought_together": None,
    }
    reviews = write_gz(tmp_path / "All_Beauty.jsonl.gz", [json.dumps(review), json.dumps({**review, "rating": 3})])
    meta_path = tmp_path / "meta_All_Beauty.jsonl"  # plain text: no gzip magic
    meta_path.write_text(json.dumps(meta) + "\n" + json.dumps({**meta, "price": 9.5}) + "\n")
    reader = get_reader("amazon2023", str(reviews), str(meta_path))
    first, second = tally(reader.interactions()).records
    assert first == {
        "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ",
        "item_id": "B00YQ6X8EP",  # parent_asin
        "timestamp": 1588687728,
        "rating": 5.0,
        "review_text": "This spray is really nice.",
        "review_summary": "Such a lovely scent",
    }
    assert second["rating"] == 3.0
    item, priced = tally(reader.items(), ITEM_KEYS).records
    assert (item["item_id"], item["brand"]) == ("B00YQ6X8EP", "Howard Products")
    assert (item["price"], priced["price"]) == (None, 9.5)
    assert item["categories"] == ["Beauty", "Skin Care"] and item["description"] == "Restores. Protects."
    assert item["extra"]["features"] == ["Conditions leather"] and item["extra"]["details"] == {"UPC": "617390882781"}
    assert item["extra"]["main_category"] == "All Beauty"


def test_movielens_1m(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Misérables, Les (1995)::Drama|Musical\n".encode(
            "latin-1"
        )
    )
    reader = get_reader("movielens", str(tmp_path))
    assert reader.variant == "ml-1m"
    got = tally(reader.interactions(), INTERACTION_KEYS)
    assert got.bad == [] and [r["user_id"] for r in got.records] == ["1", "1", "2"]
    assert got.records[0]["timestamp"] == 978300760 and got.records[0]["rating"] == 5.0
    items = tally(reader.items(), ITEM_KEYS).records
    assert items[1]["title"] == "Misérables, Les (1995)" and items[1]["categories"] == ["Drama", "Musical"]
    assert reader.files() == [str(tmp_path / "ratings.dat"), str(tmp_path / "movies.dat")]


STEAM_REVIEWS = [
    "{u'username': u'Chaos Syren', u'hours': 0.1, u'products': 41, u'product_id': u'725280', u'page_order': 0, "
    "u'date': u'2017-12-17', u'text': u'This would not be acceptable as an entertainment even back in the day.', "
    "u'early_access': False, u'page': 1}",
    "{u'username': u'Ariman1', u'hours': 13.2, u'products': 1386, u'product_id': u'328100', u'page_order': 2, "
    "u'date': u'2017-08-02', u'text': u'Addictive RPG ! Works fine on linux though it has some minor bugs.', "
    "u'early_access': False, u'page': 1, u'user_id': u'76561198007483075', "
    "u'compensation': u'Product received for free'}",
    "{u'username': u'Nobody', u'product_id': u'328100', u'date': u'2017-08-03', u'text': u'no hours', u'page': 1}",
]


def test_steam_reviews_are_implicit_hours(tmp_path):
    write_gz(tmp_path / "steam_reviews.json.gz", STEAM_REVIEWS)
    write_gz(
        tmp_path / "steam_games.json.gz",
        [
            "{u'id': u'725280', u'app_name': u'Psi Project', u'price': u'Free to Play', u'genres': [u'Indie'], "
            "u'tags': [u'Indie', u'Action'], u'publisher': u'Pub'}",
            "{u'id': u'328100', u'title': u'Gunspell', u'price': u'Starting at $449.00', u'developer': u'Dev'}",
            "{u'id': u'1', u'title': u'Kit', u'price': u'Install Now'}",
        ],
    )
    reader = get_reader("steam", str(tmp_path))
    assert reader.implicit_feedback and not reader.synthetic_timestamps
    assert reader.files() == [str(tmp_path / "steam_reviews.json.gz"), str(tmp_path / "steam_games.json.gz")]
    got = tally(reader.interactions(), INTERACTION_KEYS | {"implicit"})
    assert got.bad == []
    assert [(r["user_id"], r["item_id"], r["implicit"], r["rating"]) for r in got.records] == [
        ("Chaos Syren", "725280", 0.1, None),
        ("Ariman1", "328100", 13.2, None),
        ("Nobody", "328100", None, None),
    ]
    assert got.records[0]["timestamp"] == int(datetime(2017, 12, 17, tzinfo=UTC).timestamp())
    games = tally(reader.items(), ITEM_KEYS).records
    assert [(g["title"], g["brand"], g["price"]) for g in games] == [
        ("Psi Project", "Pub", 0.0),
        ("Gunspell", "Dev", 449.0),
        ("Kit", None, None),
    ]
    assert games[0]["categories"] == ["Indie", "Action"] and games[2]["extra"]["price"] == "Install Now"


def test_steam_australian_user_reviews(tmp_path):
    line = (
        "{'user_id': '76561197970982479', 'user_url': 'http://steamcommunity.com/profiles/76561197970982479', "
        "'reviews': [{'funny': '', 'posted': 'Posted November 5, 2011.', 'last_edited': '', 'item_id': '1250', "
        "'helpful': 'No ratings yet', 'recommend': True, 'review': 'Simple yet with great replayability.'}, "
        "{'funny': '', 'posted': 'Posted July 15, 2011.', 'last_edited': '', 'item_id': '22200', "
        "'helpful': 'No ratings yet', 'recommend': False, 'review': 'Not for me.'}, "
        "{'funny': '', 'posted': 'Posted March 4.', 'last_edited': '', 'item_id': '43110', "
        "'helpful': 'No ratings yet', 'recommend': True, 'review': 'Undated.'}]}"
    )
    path = write_gz(tmp_path / "australian_user_reviews.json.gz", [line])
    reader = get_reader("steam", str(path))
    assert not reader.implicit_feedback  # thumbs up/down, no hours
    got = tally(reader.interactions(), INTERACTION_KEYS)
    assert [(r["item_id"], r["rating"], day(r["timestamp"])) for r in got.records] == [
        ("1250", 5.0, date(2011, 11, 5)),
        ("22200", 1.0, date(2011, 7, 15)),
    ]
    assert all(r["user_id"] == "76561197970982479" for r in got.records)
    [(location, bad)] = got.bad
    assert (location.line, bad.reason, bad.field) == (1, "bad_date", "posted")
