"""Parse and check an LLM's reply against the output contract.

Contract: ``{"preferences": [1 to 5 strings]}``; each statement non-empty after
trimming, at least two words, at most 200 characters; no duplicates (case-insensitive).
Whitespace is trimmed and collapsed; nothing else is rewritten: a reply that breaks the
contract is rejected with a reason, and the pipeline retries it with a new seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_STATEMENTS = 5
MAX_CHARS = 200
MIN_WORDS = 2


@dataclass(frozen=True)
class Parsed:
    values: list[str] | None  # the statements when the reply is valid
    reason: str | None = None  # why it is not: a short stable key plus detail

    @property
    def ok(self) -> bool:
        return self.values is not None


def parse_statements(
    text: str | None, key: str = "preferences", max_items: int = MAX_STATEMENTS, min_words: int = MIN_WORDS
) -> Parsed:
    """Parse a JSON reply and check its list under `key`."""
    if not text or not text.strip():
        return Parsed(None, "empty_reply")
    try:
        obj = json.loads(_strip_fence(text))
    except json.JSONDecodeError as exc:
        return Parsed(None, f"invalid_json: {exc.msg} at char {exc.pos}")
    if not isinstance(obj, dict) or key not in obj:
        return Parsed(None, f"missing_key: expected an object with {key!r}")
    raw = obj[key]
    if not isinstance(raw, list):
        return Parsed(None, f"wrong_type: {key!r} must be a list, got {type(raw).__name__}")
    if not 1 <= len(raw) <= max_items:
        return Parsed(None, f"wrong_count: {len(raw)} statements, expected 1..{max_items}")
    values: list[str] = []
    seen: set[str] = set()
    for i, value in enumerate(raw):
        if not isinstance(value, str):
            return Parsed(None, f"wrong_type: statement {i} is {type(value).__name__}")
        value = " ".join(value.split())
        if not value:
            return Parsed(None, f"empty_statement: statement {i}")
        if len(value.split()) < min_words:
            return Parsed(None, f"too_short: statement {i} has fewer than {min_words} words")
        if len(value) > MAX_CHARS:
            return Parsed(None, f"too_long: statement {i} has {len(value)} > {MAX_CHARS} characters")
        if value.lower() in seen:
            return Parsed(None, f"duplicate: statement {i} repeats an earlier one")
        seen.add(value.lower())
        values.append(value)
    return Parsed(values)


def _strip_fence(text: str) -> str:
    """Accept a reply wrapped in a ```json fence (unconstrained engines add one)."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else text[3:]
        if text.rstrip().endswith("```"):
            text = text.rstrip()[:-3]
    return text
