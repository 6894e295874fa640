"""Readers on broken input: bad rows come back as BadRow with their place, unreadable
files raise DataError naming file and line, and Python literals are never executed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from steerrec.data.readers import _io, _jsondoc, get_reader
from steerrec.data.readers.base import BadRow, DataError, Location

GOOD = {
    "reviewerID": "U1",
    "asin": "I1",
    "overall": 5.0,
    "unixReviewTime": 1393545600,
    "reviewText": "fine",
    "summary": "ok",
}


def rows_of(reader) -> list[tuple[Location, object]]:
    return list(reader.interactions())


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bad_rows(rows) -> list[tuple[int | str, str, str | None]]:
    return [(loc.line, row.reason, row.field) for loc, row in rows if isinstance(row, BadRow)]


def test_truncated_gzip_raises_naming_file_and_line(tmp_path):
    payload = gzip.compress(
        ("\n".join(json.dumps({**GOOD, "reviewText": f"review {i} " * 20}) for i in range(2000)) + "\n").encode()
    )
    path = tmp_path / "reviews_Cut_5.json.gz"
    path.write_bytes(payload[: len(payload) // 2])
    rows = []
    with pytest.raises(DataError) as caught:
        for row in get_reader("amazon2014", str(path)).interactions():
            rows.append(row)  # records before the cut stream out first
    assert rows and all(not isinstance(r, BadRow) for _, r in rows)
    assert str(path) in str(caught.value)
    assert caught.value.location == Location(str(path), len(rows) + 1)
    assert f":{len(rows) + 1}:" in str(caught.value)


def test_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(DataError, match="nope.json.gz"):
        next(get_reader("amazon2018", str(tmp_path / "nope.json.gz")).interactions())


@pytest.mark.parametrize(
    "line, reason, field",
    [
        ('{"reviewerID": "U2", "asin": "I2", "overall": 4.0, ', "malformed_json", None),
        ('["a", "list"]', "not_an_object", None),
        (json.dumps({k: v for k, v in GOOD.items() if k != "asin"}), "missing_field", "asin"),
        (json.dumps({**GOOD, "reviewerID": None}), "missing_field", "reviewerID"),
        (json.dumps({**GOOD, "overall": "five"}), "wrong_type", "overall"),
        (json.dumps({**GOOD, "overall": float("nan")}), "wrong_type", "overall"),
        (json.dumps({**GOOD, "overall": False}), "wrong_type", "overall"),
        (json.dumps({**GOOD, "unixReviewTime": 1393545600.5}), "wrong_type", "unixReviewTime"),
        (json.dumps({**GOOD, "unixReviewTime": True}), "wrong_type", "unixReviewTime"),
        (json.dumps({**GOOD, "asin": ["I1"]}), "wrong_type", "asin"),
        (json.dumps({**GOOD, "reviewText": {"a": 1}}), "wrong_type", "reviewText"),
    ],
)
def test_bad_review_line_is_a_bad_row_with_its_place(tmp_path, line, reason, field):
    path = write_lines(tmp_path / "r.json", [json.dumps(GOOD), line, "", json.dumps(GOOD)])
    rows = rows_of(get_reader("amazon2018", str(path)))
    assert bad_rows(rows) == [(2, reason, field)]
    assert [loc.line for loc, r in rows if not isinstance(r, BadRow)] == [1, 4]  # blank line 3 skipped
    location, bad = rows[1]
    assert location.file == str(path)
    assert bad.describe(location).startswith(f"{path}:2:")


def test_numeric_strings_are_accepted(tmp_path):
    path = write_lines(tmp_path / "r.json", [json.dumps({**GOOD, "overall": "4", "unixReviewTime": "1393545600"})])
    [(_, record)] = rows_of(get_reader("amazon2014", str(path)))
    assert (record["rating"], record["timestamp"]) == (4.0, 1393545600)


def test_amazon2023_missing_parent_asin(tmp_path):
    review = {"user_id": "U", "asin": "A", "rating": 4.0, "timestamp": 1588687728923}
    path = write_lines(tmp_path / "r.jsonl", [json.dumps(review)])
    assert bad_rows(rows_of(get_reader("amazon2023", str(path)))) == [(1, "missing_field", "parent_asin")]


def test_python_literal_code_is_never_executed(tmp_path):
    sentinel = tmp_path / "pwned"
    attack = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    meta = write_lines(
        tmp_path / "meta.json",
        [
            attack,
            f"{{'asin': 'X1', 'title': {attack}}}",
            "{'asin': 'X2', 'title': 'Safe'}",
        ],
    )
    rows = list(get_reader("amazon2014", str(tmp_path / "r.json"), str(meta)).items())
    games = write_lines(tmp_path / "steam_games.json", [attack, "{u'id': u'7', u'title': u'Safe'}"])
    rows_steam = list(get_reader("steam", str(games)).items())
    assert not sentinel.exists()
    assert bad_rows(rows) == [(1, "malformed_literal", None), (2, "malformed_literal", None)]
    assert rows[2][1]["title"] == "Safe"
    assert bad_rows(rows_steam) == [(1, "malformed_literal", None)]


def test_literal_parser_accepts_json_copies():
    assert _io.parse_literal('{"asin": "X", "ok": true, "price": null}') == {"asin": "X", "ok": True, "price": None}
    assert _io.parse_literal("{'asin': u'X', 'ok': True}") == {"asin": "X", "ok": True}
    assert isinstance(_io.parse_literal("[1, 2]"), BadRow)


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(ValueError) as caught:
        get_reader("amazon2099", "x")
    message = str(caught.value)
    assert "amazon2099" in message
    for name in ("amazon2014", "amazon2018", "amazon2023", "lcrec", "movielens", "steam"):
        assert name in message


def test_movielens_wrong_field_count_and_type(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::10::5::978300760\n1::11::5\n1::12::five::978300760\n")
    (tmp_path / "movies.dat").write_text("10::A (1995)::Drama\n")
    rows = rows_of(get_reader("movielens", str(tmp_path)))
    assert bad_rows(rows) == [(2, "wrong_field_count", None), (3, "wrong_type", "rating")]


def test_movielens_folder_must_hold_ratings(tmp_path):
    with pytest.raises(DataError, match="u.data"):
        get_reader("movielens", str(tmp_path))


def test_lcrec_bad_entries_are_bad_rows(tmp_path):
    (tmp_path / "X.inter.json").write_text(json.dumps({"0": [0, 1], "1": "oops", "2": [1, {"a": 1}, True]}))
    (tmp_path / "X.item.json").write_text(json.dumps({"0": {"title": "T0"}, "1": ["not", "an", "object"]}))
    reader = get_reader("lcrec", str(tmp_path))
    rows = rows_of(reader)
    assert bad_rows(rows) == [
        ("/1", "wrong_type", "item_id"),
        ("/2/1", "wrong_type", "item_id"),
        ("/2/2", "wrong_type", "item_id"),
    ]
    good = [r for _, r in rows if not isinstance(r, BadRow)]
    assert [(r["user_id"], r["item_id"], r["timestamp"]) for r in good] == [("0", "0", 1), ("0", "1", 2), ("2", "1", 1)]
    assert bad_rows(reader.items()) == [("/1", "wrong_type", "item")]


def test_lcrec_truncated_document_raises_with_line(tmp_path):
    text = json.dumps({str(u): list(range(u, u + 5)) for u in range(50)}, indent=2)
    (tmp_path / "X.inter.json").write_text(text[: len(text) // 2])
    (tmp_path / "X.item.json").write_text("{}")
    reader = get_reader("lcrec", str(tmp_path / "X.inter.json"))
    with pytest.raises(DataError) as caught:
        list(reader.interactions())
    assert caught.value.location.file == str(tmp_path / "X.inter.json")
    assert isinstance(caught.value.location.line, int) and caught.value.location.line > 1


def test_lcrec_needs_the_item_file(tmp_path):
    (tmp_path / "X.inter.json").write_text("{}")
    with pytest.raises(DataError, match="X.item.json"):
        get_reader("lcrec", str(tmp_path))


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_streamed_json_object_equals_json_load(tmp_path, monkeypatch, chunk):
    document = {
        "0": [1, 22, 333, 4444],
        'k"ey': {"title": 'caf\u00e9 \\ "q"', "n": -1.5e3},
        "2": [],
        "3": 12345,
        "4": None,
        "5": "x",
    }
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document, indent=1))
    monkeypatch.setattr(_jsondoc, "_JSON_CHUNK", chunk)
    assert dict(_jsondoc.iter_json_object(path)) == document
    path.write_text("{}")
    assert list(_jsondoc.iter_json_object(path)) == []
    path.write_text('{\n"a": 1,\n"b" 2}')
    with pytest.raises(DataError) as caught:
        list(_jsondoc.iter_json_object(path))
    assert caught.value.location == Location(str(path), 3)
