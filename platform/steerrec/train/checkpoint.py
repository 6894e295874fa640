"""A loop checkpoint's files: weights and optimizer state as safetensors, the rest as JSON (no pickle).

save_weights(model, d / WEIGHTS, trainable_only=True)   # a LoRA without its base
save_optimizer(optimizer, d)                              # optimizer.safetensors + optimizer.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WEIGHTS, BEST, STATE = "model.safetensors", "best.safetensors", "state.json"
OPTIM, OPTIM_META = "optimizer.safetensors", "optimizer.json"


def unwrap(model: Any) -> Any:
    return model.module if hasattr(model, "module") else model


def save_optimizer(optimizer: Any, directory: Path) -> None:
    """Optimizer state as safetensors (tensors) + JSON (param groups, scalars)."""
    import torch
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{name}"] = value
    save_file(tensors, str(directory / OPTIM))
    (directory / OPTIM_META).write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def load_optimizer(optimizer: Any, directory: Path) -> None:
    from safetensors.torch import load_file

    meta = json.loads((directory / OPTIM_META).read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(load_file(str(directory / OPTIM)).items()) + list(meta["scalars"].items()):
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_weights(model: Any, path: Path, trainable_only: bool = False) -> None:
    """The model's weights as safetensors; trainable_only: just the parameters being trained."""
    from safetensors.torch import save_file, save_model

    if not trainable_only:
        save_model(unwrap(model), str(path))
        return
    named = unwrap(model).named_parameters()
    save_file({n: p.detach().cpu().contiguous() for n, p in named if p.requires_grad}, str(path))


def load_weights(model: Any, path: Path, trainable_only: bool = False) -> None:
    """Load `save_weights`'s file; a trainable-only file must hold every trainable parameter."""
    from safetensors.torch import load_file, load_model

    if not trainable_only:
        load_model(model, str(path))
        return
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    lost = sorted(trainable & set(missing))
    if unexpected or lost:
        raise ValueError(f"{path}: unexpected weights {sorted(unexpected)[:5]}, missing trainable weights {lost[:5]}")


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete loop checkpoint under `root` (checkpoint_NNNN with state.json), if any."""
    done = sorted(p for p in Path(root).glob("checkpoint_*") if (p / STATE).is_file())
    return done[-1] if done else None
