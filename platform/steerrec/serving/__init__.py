"""The recommender service logic as a plain class; `app` wraps it in Ray Serve (serve/app.py
names it for `serve run`), `tiny_run` writes a random servable run folder for tests and benchmarks.

    from steerrec.serving import Recommender, RecommendRequest
    rec = Recommender.from_run("runs/mender_tok")
    rec.recommend([RecommendRequest(user_id="u1", preferences=["Avoid bulky headsets"], k=10)])

Importing this package imports no torch and no Ray (`app` does); loading a run folder imports torch.
"""

from steerrec.serving.schemas import (
    Item,
    ItemsResponse,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    SteeringReading,
    UserHistory,
)
from steerrec.serving.service import Query, Recommender, RequestError, RunFolder, UnknownUserError, load_run

__all__ = [
    "Item",
    "ItemsResponse",
    "Query",
    "RecommendRequest",
    "RecommendResponse",
    "Recommender",
    "RequestError",
    "RunFolder",
    "ScoredItem",
    "SteeringReading",
    "UnknownUserError",
    "UserHistory",
    "load_run",
]
