"""The steerable recommender on Ray Serve: a FastAPI ingress over steerrec.serving.Recommender.

serve/app.py is the entry point Serve imports (serve/config.yaml's import_path); it re-exports
`build_app` from here, so replicas import this module from the installed package:

    serve run serve/config.yaml                                  # from the repository root
    serve run serve.app:build_app run_dir=/abs/path/to/run      # same, without the config file

Routes: POST /v1/recommend, GET /v1/items, GET /v1/users, GET /v1/users/{user_id},
GET /healthz, the web page at / (static/, shipped with the package), OpenAPI docs at /docs.
When the environment variable STEERREC_API_KEY is set in the replica, every /v1 route wants
it in the X-API-Key header. Concurrent recommend calls are grouped by `@serve.batch` into one
beam search. Importing this module imports Ray Serve and FastAPI; `steerrec.serving` does not.
"""

# no `from __future__ import annotations`: Serve re-creates the route methods, and FastAPI
# must see real classes, not strings, in their signatures
import hmac
import logging
import os
import time
from pathlib import Path

from fastapi import FastAPI, HTTPException, Security
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.responses import FileResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from ray.serve import Application

from ray import serve
from steerrec.config import from_dict
from steerrec.serving import Query, Recommender, RecommendRequest, RecommendResponse, RequestError, UnknownUserError
from steerrec.serving.schemas import (
    MAX_ID_CHARS,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    Health,
    ItemsResponse,
    UserHistory,
    UsersResponse,
)
from steerrec.serving.service import BEAM_SIZE
from steerrec.steering import SteeringConfig

logger = logging.getLogger(__name__)

API_KEY_ENV = "STEERREC_API_KEY"
STATIC = Path(__file__).resolve().parent / "static"

api = FastAPI(
    title="steerrec",
    version="0.1.0",
    description="Recommendations steered by plain-language preferences (Mender-style generative retrieval).",
)
api.mount("/static", StaticFiles(directory=STATIC), name="static")
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description=f"required when {API_KEY_ENV} is set")


def require_key(key: str | None = Security(_key_header)) -> None:
    """401 unless the replica has no key set or the header carries it."""
    expected = os.environ.get(API_KEY_ENV)
    if expected and not (key and hmac.compare_digest(key.encode(), expected.encode())):
        raise HTTPException(
            401,
            detail=[{"loc": ["header", "X-API-Key"], "msg": "missing or wrong API key", "type": "unauthorized"}],
            headers={"WWW-Authenticate": "X-API-Key"},
        )


def _unprocessable(status: int, loc: list, msg: str, kind: str) -> HTTPException:
    return HTTPException(status, detail=[{"loc": loc, "msg": msg, "type": kind}])


def pin_process(cpus: list[int]) -> None:
    """Pin every thread of this process to `cpus` (threads started later inherit it).

    Ray schedules CPUs as counts, not cores: a replica's threads float over the node's cores
    and share them with the proxy, Ray's daemons and anything else there. Pinned to cores of
    its own, its caches stay warm between requests (benchmarks/serve_load.py --pin).
    """
    if not hasattr(os, "sched_setaffinity"):
        raise RuntimeError("cpus: pinning needs os.sched_setaffinity (Linux)")
    wanted = set(cpus)
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), wanted)
        except ProcessLookupError:  # the thread ended meanwhile
            pass
        except OSError as exc:
            raise ValueError(f"cpus: cannot pin to {sorted(wanted)} on a node with {os.cpu_count()} cores") from exc


KEY = [Security(require_key)]
NOT_FOUND = {404: {"description": "unknown user"}}


@serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 1})
@serve.ingress(api)
class SteerrecApp:
    def __init__(
        self,
        run_dir: str,
        beam_size: int = BEAM_SIZE,
        max_batch_size: int = 16,
        batch_wait_timeout_s: float = 0.002,
        device: str = "cpu",
        cpus: list[int] | None = None,
        steering: dict | None = None,
    ) -> None:
        if cpus:
            pin_process(cpus)
        steer = from_dict(SteeringConfig, steering or {}, "app args", "steering")
        self.rec = Recommender.from_run(run_dir, beam_size=beam_size, device=device, steering=steer)
        self._recommend_batch.set_max_batch_size(max_batch_size)
        self._recommend_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        logger.info(
            "serving %s from %s; batches of <= %d, wait %.3f s; API key %s",
            self.rec.model_name,
            run_dir,
            max_batch_size,
            batch_wait_timeout_s,
            "required" if os.environ.get(API_KEY_ENV) else "off",
        )

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _recommend_batch(self, queries: list[Query]) -> list[RecommendResponse]:
        # On the event loop: requests queue up (and form the next batch) while a search runs.
        # A worker thread (asyncio.to_thread) let the loop parse requests during the search,
        # but the two threads then convoy on the GIL and serve fewer requests/s than inline
        # (README, "Measured figures"; benchmarks/serve_load.py).
        return self.rec.recommend_queries(queries)

    @api.post("/v1/recommend", dependencies=KEY, responses=NOT_FOUND)
    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        start = time.perf_counter()
        try:
            query = self.rec.resolve(request)
        except RequestError as exc:
            raise _unprocessable(422, ["body", *exc.loc], exc.message, "unknown_item") from exc
        except UnknownUserError as exc:
            raise _unprocessable(404, ["body", "user_id"], f"unknown user {exc.user_id!r}", "unknown_user") from exc
        response = await self._recommend_batch(query)
        return response.model_copy(update={"latency_ms": (time.perf_counter() - start) * 1000})

    @api.get("/v1/items", dependencies=KEY)
    async def items(
        self, query: str = QueryParam("", max_length=MAX_QUERY_CHARS), limit: int = QueryParam(10, ge=1, le=MAX_LIMIT)
    ) -> ItemsResponse:
        return ItemsResponse(items=self.rec.search_items(query, limit))

    @api.get("/v1/users", dependencies=KEY)
    async def users(
        self, prefix: str = QueryParam("", max_length=MAX_ID_CHARS), limit: int = QueryParam(20, ge=1, le=MAX_LIMIT)
    ) -> UsersResponse:
        return UsersResponse(users=self.rec.users(prefix, limit))

    @api.get("/v1/users/{user_id}", dependencies=KEY, responses=NOT_FOUND)
    async def user(self, user_id: str = PathParam(max_length=MAX_ID_CHARS)) -> UserHistory:
        try:
            return self.rec.user_history(user_id)
        except UnknownUserError as exc:
            raise _unprocessable(404, ["path", "user_id"], f"unknown user {user_id!r}", "unknown_user") from exc

    @api.get("/healthz")
    async def healthz(self) -> Health:
        return Health(status="ok", model=self.rec.model_name, n_items=self.rec.n_items)

    @api.get("/", include_in_schema=False)
    async def page(self) -> FileResponse:
        return FileResponse(STATIC / "index.html")


class AppArgs(BaseModel):
    """Arguments of `build_app` (the `args:` of serve/config.yaml)."""

    run_dir: str = Field(description="the run folder to serve; relative paths resolve where the app is built")
    beam_size: int = Field(BEAM_SIZE, ge=1, description="beams per request; the largest k served")
    max_batch_size: int = Field(16, ge=1)
    batch_wait_timeout_s: float = Field(0.002, ge=0)
    device: str = "cpu"
    cpus: list[int] | None = Field(
        None,
        description="pin the replica to these cores (Linux); for a node whose "
        "cores it may own, with one replica per node",
    )
    steering: dict = Field(
        default_factory=dict, description="steerrec.steering.SteeringConfig fields: thresholds, weights, enabled"
    )


def build_app(args: AppArgs) -> Application:
    return SteerrecApp.bind(**{**args.model_dump(), "run_dir": str(Path(args.run_dir).resolve())})
