"""Request and response shapes of the recommender service, with their limits.

Pydantic checks every field before any model runs, so a bad request fails with the
field named (FastAPI turns it into a 422 whose `loc` is the field's path).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_HISTORY = 200  # item ids in one request's history
MAX_ID_CHARS = 200  # characters of one item or user id
MAX_PREFERENCES = 10  # statements in one request
MAX_PREFERENCE_CHARS = 300  # characters of one statement
MAX_K = 50  # items returned, at most; a service serves k up to its beam size (<= this)
MAX_QUERY_CHARS = 200
MAX_LIMIT = 100  # rows returned by item search and user listing

ItemId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]


def _has_words(text: str) -> str:
    if not any(ch.isalnum() for ch in text):
        raise ValueError("a preference needs at least one letter or digit")
    return text


Preference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PREFERENCE_CHARS),
    AfterValidator(_has_words),
]


class RecommendRequest(BaseModel):
    """Either a history of item ids (oldest first) or a known user_id, plus preferences."""

    model_config = ConfigDict(extra="forbid")

    history: list[ItemId] | None = Field(
        default=None, max_length=MAX_HISTORY, description="item ids, oldest first; or give user_id"
    )
    user_id: ItemId | None = Field(default=None, description="a user whose stored history is used")
    preferences: list[Preference] = Field(
        default_factory=list,
        max_length=MAX_PREFERENCES,
        description='plain-language statements, e.g. "Avoid bulky headsets"',
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="number of items returned")
    exclude_history: bool = Field(default=True, description="leave out items already in the history")

    @model_validator(mode="after")
    def _history_or_user(self) -> RecommendRequest:
        if (self.history is None) == (self.user_id is None):
            raise ValueError("give exactly one of 'history' and 'user_id'")
        return self


class Item(BaseModel):
    item_id: str
    title: str


class ScoredItem(Item):
    score: float = Field(description="log-probability of the item's semantic ID, plus its steering bias")
    id_text: str | None = Field(None, description="the item's textual ID (IDGenRec runs; None otherwise)")


class SteeringReading(BaseModel):
    """How one preference was read (steerrec.steering)."""

    text: str
    reading: Literal["avoid", "like"]
    p_avoid: float = Field(description="the polarity classifier's probability that the statement asks to avoid")
    items: int = Field(description="catalog items it names: left out (avoid) or raised (like)")


class RecommendResponse(BaseModel):
    items: list[ScoredItem]
    model: str
    latency_ms: float
    steering: list[SteeringReading] = Field(
        default_factory=list, description="each preference as read; an item both liked and avoided is left out"
    )


class ItemsResponse(BaseModel):
    items: list[Item]


class UserHistory(BaseModel):
    user_id: str
    history: list[Item] = Field(description="the user's items, oldest first")


class UsersResponse(BaseModel):
    users: list[str]


class Health(BaseModel):
    status: str
    model: str
    n_items: int
