"""The run folder: one home for its file names, its run.json, and loading a recommender run.

Every job that leaves a run folder writes run.json through `new_run_info` + `write_run_info`
(provenance is collected here only), and every reader goes through `read_run_info`, which
checks the file and names it and the field when something is wrong.

A recommender run (steerrec.train.recommender writes it, evaluation and serving read it):

<out>/config.yaml              the model's config (Model.load(out) rebuilds it)
<out>/model.safetensors        the best epoch's weights (valid NDCG@10)
<out>/encoder/                 Mender-Tok only: the text encoder's HF config and tokenizer
<out>/semantic_ids.parquet     item_id, codes (list<int32>); row order = the model's item rows; IDGenRec:
                               codes of varying length (a textual ID's token ids) and its text
<out>/tokenizer.json           IDGenRec only: the tokenizer of its textual IDs and prompts
<out>/items.parquet            item_id, title, text (the listing steering matches; not in older folders): a
                               copy, serving needs nothing outside; without semantic IDs its rows are the item rows
<out>/item_embeddings.parquet  Mender-Emb only: item_id, embedding, same row order
<out>/job.yaml                 the whole job config (embedder included)
<out>/metrics.json             per-epoch metrics, best epoch
<out>/run.json                 RunInfo: kind, seed, inputs + sha256, details (model, best epoch, ...)
                               and provenance (schema version, git commit, package versions)
<out>/ray/                     Ray Train's checkpoints (re-running with the same out resumes)

run.json files written before `schema_version` existed are read as legacy (version 0) with a
warning: their top-level keys other than the common fields become `details`.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# the run folder's file names live with the other folder contracts in data/schema.py, so that
# models (below this module) can use them too; re-exported: run folders are read and written here
from steerrec.data.schema import (  # noqa: F401
    CONFIG_FILE,
    ITEM_EMBEDDINGS_FILE,
    ITEMS_FILE,
    JOB_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PLOT_FILE,
    QUALITY_FILE,
    RAY_DIR,
    RESULTS_FILE,
    RUN_FILE,
    SEMANTIC_IDS_FILE,
)
from steerrec.errors import UserError

logger = logging.getLogger(__name__)


RUN_SCHEMA_VERSION = 1
PACKAGES = ("steerrec", "torch", "transformers", "peft", "ray", "numpy", "pyarrow", "safetensors")
WRITERS = {  # who writes each file, for the message when it is missing
    RUN_FILE: "every training job",
    CONFIG_FILE: "the model's save (steerrec.train)",
    MODEL_FILE: "the model's save (steerrec.train)",
    ITEMS_FILE: "jobs/train_recommender.py",
    SEMANTIC_IDS_FILE: "jobs/train_semantic_ids.py",
    JOB_FILE: "jobs/train_recommender.py",
}
_REQUIRED: dict[str, type | tuple[type, ...]] = {"kind": str, "seed": int, "inputs": dict, "details": dict}
_PROVENANCE = ("git_commit", "versions", "python", "created_at")


class RunFolderError(UserError, ValueError):
    """A run folder that is missing a file or holds a malformed one; the message names both."""


@dataclass
class RunInfo:
    """run.json: what was trained, from what, by which code."""

    kind: str  # "recommender", "semantic_ids", "sft", "align", ...
    seed: int
    inputs: dict[str, dict]  # name -> describe_input(...)
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific: model, loss, best_epoch, ...
    schema_version: int = RUN_SCHEMA_VERSION
    git_commit: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    python: str | None = None
    created_at: str | None = None


def git_commit() -> str | None:
    """HEAD of the repository this package lives in, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe_input(path: str, manifest: bool = True) -> dict[str, Any]:
    """A folder (its manifest.json's sha256) or a file (its own sha256)."""
    from steerrec.data import io, schema

    target = f"{path}/{schema.MANIFEST_FILE}" if manifest else path
    try:
        digest = io.sha256(target)
    except (FileNotFoundError, OSError):
        digest = None
        logger.warning("%s: not found, run.json records no sha256 for it", target)
    return {"path": path, ("manifest_sha256" if manifest else "sha256"): digest}


def new_run_info(kind: str, seed: int, inputs: dict[str, dict], **details: Any) -> RunInfo:
    """A RunInfo with the provenance of this process (git commit, versions, python, time)."""
    return RunInfo(
        kind=kind,
        seed=int(seed),
        inputs=inputs,
        details=details,
        git_commit=git_commit(),
        versions=package_versions(),
        python=platform.python_version(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_json(path: str | Path, obj: Any) -> Path:
    """Write `obj` as JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, default=float)  # fails before any file is touched
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_run_info(run_dir: str | Path, info: RunInfo) -> Path:
    return write_json(Path(run_dir) / RUN_FILE, asdict(info))


def require_file(run_dir: str | Path, name: str) -> Path:
    """`run_dir/name`, or RunFolderError naming the missing file and what writes it."""
    path = Path(run_dir) / name
    if not path.exists():
        writer = WRITERS.get(name, "the job that made this run folder")
        raise RunFolderError(f"{path}: missing (written by {writer}); is {run_dir} a finished run folder?")
    return path


def read_run_info(run_dir: str | Path, kinds: Sequence[str] | None = None) -> RunInfo:
    """Read and check run.json; RunFolderError names the file and the field."""
    path = require_file(run_dir, RUN_FILE)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if "schema_version" not in data:
        logger.warning("%s: no schema_version (written before it existed), read as legacy", path)
        data = _from_legacy(data)
    elif data["schema_version"] != RUN_SCHEMA_VERSION or isinstance(data["schema_version"], bool):
        version = data["schema_version"]
        raise RunFolderError(f"{path}: schema_version {version!r} unknown; this code reads {RUN_SCHEMA_VERSION}")
    for name, kind in _REQUIRED.items():
        if name not in data:
            raise RunFolderError(f"{path}: field {name!r} missing")
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise RunFolderError(f"{path}: field {name!r} must be {_type_name(kind)}, got {data[name]!r}")
    unknown = sorted(set(data) - set(RunInfo.__dataclass_fields__))
    if unknown:
        raise RunFolderError(f"{path}: unknown field(s) {unknown}")
    if kinds is not None and data["kind"] not in kinds:
        raise RunFolderError(f"{path}: field 'kind' is {data['kind']!r}, expected one of {list(kinds)}")
    return RunInfo(**data)


@dataclass
class RecommenderRun:
    """A recommender run folder, loaded and checked by `load_recommender`."""

    info: RunInfo
    model_name: str  # the registry name (steerrec.models)
    model: Any  # in eval mode
    item_ids: list[str]  # the model's item rows (semantic_ids.parquet order, else items.parquet order)
    codes: Any  # np.ndarray [n_items, L] int64; L = 0 without semantic IDs; -1 after a textual ID's end
    titles: dict[str, str]  # every item of items.parquet ("" where it has no title)
    item_emb: Any = None  # np.ndarray [n_items, d] (Mender-Emb) or None
    texts: dict[str, str] = field(default_factory=dict)  # items.parquet's listing (title in older folders)


def load_recommender(run_dir: str | Path, models: Sequence[str] | None = None) -> RecommenderRun:
    """Load a recommender run folder (layout above); `models` limits the registry names accepted.

    Every check raises RunFolderError naming the file (and the field or row) at fault."""
    import numpy as np

    from steerrec.models import model_class

    run_dir = Path(run_dir)
    info = read_run_info(run_dir, kinds=("recommender",))
    name = info.details.get("model")
    where = run_dir / RUN_FILE
    if not isinstance(name, str):
        raise RunFolderError(f"{where}: field 'details.model' must be the model's registry name, got {name!r}")
    if models is not None and name not in models:
        raise RunFolderError(f"{where}: field 'details.model' is {name!r}, which cannot be used here; known: {models}")
    require_file(run_dir, CONFIG_FILE)
    require_file(run_dir, MODEL_FILE)
    model = model_class(name).load(run_dir)
    model.eval()
    item_ids, titles, texts = _read_items(require_file(run_dir, ITEMS_FILE))
    codes = np.zeros((len(item_ids), 0), dtype=np.int64)
    if (run_dir / SEMANTIC_IDS_FILE).is_file():
        variable = getattr(model, "variable_length_ids", False)
        item_ids, codes = _read_semantic_ids(run_dir / SEMANTIC_IDS_FILE, titles, variable)
    item_emb = None
    if (run_dir / ITEM_EMBEDDINGS_FILE).is_file():
        item_emb = _read_item_embeddings(run_dir / ITEM_EMBEDDINGS_FILE, item_ids)
    logger.info("loaded %s run %s: %d items", name, run_dir, len(item_ids))
    return RecommenderRun(info, name, model, item_ids, codes, titles, item_emb, texts)


def _read_items(path: Path) -> tuple[list[str], dict[str, str], dict[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from steerrec.data.schema import ITEMS, validate

    has_text = "text" in pq.read_schema(path).names
    columns = pa.schema([ITEMS.field("item_id"), ITEMS.field("title"), *[pa.field("text", pa.string())] * has_text])
    table = validate(pq.read_table(path, columns=columns.names), columns, str(path))
    ids = table.column("item_id").to_pylist()
    if len(set(ids)) != len(ids):
        raise RunFolderError(f"{path}: field 'item_id': an item appears twice")
    titles = {i: t or "" for i, t in zip(ids, table.column("title").to_pylist())}
    texts = table.column("text").to_pylist() if has_text else [None] * len(ids)
    return ids, titles, {i: x or titles[i] or i for i, x in zip(ids, texts)}


def _read_semantic_ids(path: Path, titles: dict[str, str], variable: bool = False) -> tuple[list[str], Any]:
    """(item ids, codes [n, L]); with `variable` the rows may differ in length (at least 1)
    and are right-padded with -1."""
    import numpy as np
    import pyarrow.parquet as pq

    from steerrec.data.schema import SEMANTIC_IDS, validate

    table = validate(pq.read_table(path), SEMANTIC_IDS, str(path))
    ids = table.column("item_id").to_pylist()
    codes = table.column("codes").to_pylist()
    widths = {len(c) for c in codes if c is not None}
    if variable and (None in codes or 0 in widths):
        raise RunFolderError(f"{path}: field 'codes': every row needs a non-empty list")
    if not variable and (None in codes or len(widths) != 1):
        raise RunFolderError(f"{path}: field 'codes': every row needs a list of one common length, got {widths}")
    if len(set(ids)) != len(ids):
        raise RunFolderError(f"{path}: field 'item_id': an item appears twice")
    missing = [r for r, item in enumerate(ids) if item not in titles]
    if missing:
        raise RunFolderError(
            f"{path}: row {missing[0]}: item {ids[missing[0]]!r} not in {ITEMS_FILE} ({len(missing)} missing)"
        )
    if variable:
        return ids, np.array([c + [-1] * (max(widths) - len(c)) for c in codes], dtype=np.int64)
    return ids, np.asarray(codes, dtype=np.int64)


def _read_item_embeddings(path: Path, item_ids: list[str]) -> Any:
    import pyarrow.parquet as pq

    from steerrec.embed import arrow_to_vectors

    table = pq.read_table(path)
    if table.column_names[:2] != ["item_id", "embedding"]:
        raise RunFolderError(f"{path}: expected columns item_id, embedding, got {table.column_names}")
    if table.column("item_id").to_pylist() != item_ids:
        raise RunFolderError(f"{path}: field 'item_id' must list the model's items in their row order")
    return arrow_to_vectors(table.column("embedding"))


def _from_legacy(data: dict[str, Any]) -> dict[str, Any]:
    common = set(_REQUIRED) | set(_PROVENANCE)
    details = {k: v for k, v in data.items() if k not in common}
    return {k: v for k, v in data.items() if k in common} | {"details": details, "schema_version": 0}


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", dict: "a JSON object"}
    return names.get(kind, str(kind)) if isinstance(kind, type) else " or ".join(map(str, kind))
