"""One IDGenRec phase on Ray Train (steerrec.train.idgenrec runs the phases in order).

The driver sends the data, the starting weights and the optimizer state a phase continues
(safetensors and JSON bytes) through the object store and the IDs,
the tokenizer and the configs in the loop's config; each worker rebuilds the phase's
`IDGenRecTask` from them. Ray's storage is `out/ray/<phase>`, so a rerun resumes the phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steerrec.models.idgenrec_text import TOKENIZER_FILE
from steerrec.train.idgenrec import IDGenRecTask, IDGenRecTrainConfig
from steerrec.train.loop import OPTIM, OPTIM_META, LoopConfig, RayScaling, fit_ray, make_train_fn


def _build_task(config: dict[str, Any]) -> IDGenRecTask:
    """A Ray Train worker's task: the config `fit_phase_ray` sends, object refs fetched."""
    import tempfile

    import ray
    from steerrec.config import from_dict
    from steerrec.models.idgenrec_text import load_tokenizer

    get = lambda value: ray.get(value) if isinstance(value, ray.ObjectRef) else value
    work = Path(tempfile.mkdtemp(prefix="steerrec-idgenrec-"))
    (work / TOKENIZER_FILE).write_text(config["tokenizer"])
    weights = None
    if config["weights"] is not None:
        weights = work / "start.safetensors"
        weights.write_bytes(get(config["weights"]))
    optimizer = None
    if config["optimizer"] is not None:
        optimizer = work / "optimizer"
        optimizer.mkdir()
        for name, data in get(config["optimizer"]).items():
            (optimizer / name).write_bytes(data)
    ids = None if config["ids"] is None else [tuple(t) for t in config["ids"]]
    cfg = from_dict(IDGenRecTrainConfig, config["job"], "job")
    tokenizer = load_tokenizer(str(work / TOKENIZER_FILE))
    return IDGenRecTask(get(config["data"]), tokenizer, cfg, config["phase"], ids, weights, optimizer)


def fit_phase_ray(task: IDGenRecTask, loop: LoopConfig, scaling: RayScaling, out: Path, tag: str):
    """One phase on Ray Train: (loop summary, checkpoint folder); a rerun resumes it."""
    import dataclasses

    import ray
    from steerrec.config import to_dict

    config = {
        "job": to_dict(task.cfg),
        "loop": dataclasses.asdict(loop),
        "phase": task.phase,
        "data": ray.put(task.data),
        "ids": None if task.ids is None else [list(t) for t in task.ids],
        "tokenizer": (out / TOKENIZER_FILE).read_text(),
        "weights": None if task.weights is None else ray.put(Path(task.weights).read_bytes()),
        "optimizer": None,
    }
    if task.optimizer is not None:
        files = {name: (Path(task.optimizer) / name).read_bytes() for name in (OPTIM, OPTIM_META)}
        config["optimizer"] = ray.put(files)
    result = fit_ray(make_train_fn(_build_task), config, scaling, str((out / "ray").absolute()), tag)
    return result.return_value, Path(result.checkpoint.to_directory())
