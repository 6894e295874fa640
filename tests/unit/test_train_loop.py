"""The shared epoch loop without Ray: checkpoints, resumption, early stopping, optimizer state."""

from __future__ import annotations

import json

import pytest
import torch

from steerrec.train.loop import (
    LocalSession,
    LoopConfig,
    RayScaling,
    fit_local,
    load_optimizer,
    run_loop,
    save_optimizer,
)


class ToyTask:
    """Regress y = 2x with a 1->1 linear model; `scores` is what validation reports per epoch."""

    def __init__(self, scores: list[float] | None = None) -> None:
        self.scores = scores
        self.calls = 0
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 1, generator=g)

    def build_model(self):
        return torch.nn.Linear(1, 1)

    def train_batches(self, epoch, rank, world_size):
        return [{"x": self.x[i : i + 8]} for i in range(0, 32, 8)]

    def loss(self, model, batch):
        return ((model(batch["x"]) - 2 * batch["x"]) ** 2).mean()

    def validate(self, model, rank, world_size):
        self.calls += 1
        if self.scores is not None:
            return {"ndcg@10": self.scores[self.calls - 1], "count": 1.0}
        return {"ndcg@10": -float(self.loss(model, {"x": self.x})) * 32, "count": 32.0}


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    cfg = LoopConfig(epochs=10, patience=2, progress=False)
    summary, latest = fit_local(ToyTask([0.1, 0.3, 0.2, 0.25, 0.9]), cfg, tmp_path)
    assert summary["epoch"] == 4 and summary["best_epoch"] == 2 and summary["best"] == 0.3
    assert latest.name == "checkpoint_0004"
    assert json.loads((latest / "state.json").read_text())["bad_epochs"] == 2


def test_resume_continues_after_the_checkpoint_with_its_history(tmp_path):
    rows: list[dict] = []
    first, latest = fit_local(ToyTask(), LoopConfig(epochs=2, progress=False, lr=0.05), tmp_path / "a", rows.append)
    assert [r["epoch"] for r in rows] == [1, 2]
    session = LocalSession(tmp_path / "b", resume_from=latest)
    second = run_loop(ToyTask(), LoopConfig(epochs=4, progress=False, lr=0.05), session)
    assert second["start_epoch"] == 3 and [r["epoch"] for r in second["history"]] == [1, 2, 3, 4]
    assert second["history"][-1]["train_loss"] < first["history"][0]["train_loss"]


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    save_optimizer(opt, tmp_path)
    fresh = torch.optim.AdamW(model.parameters(), lr=0.5)
    load_optimizer(fresh, tmp_path)
    a, b = opt.state_dict(), fresh.state_dict()
    assert b["param_groups"][0]["lr"] == 0.01
    for pid in a["state"]:
        for name, value in a["state"][pid].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["state"][pid][name]))


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="loop.epochs"):
        LoopConfig(epochs=0)
    with pytest.raises(ValueError, match="fail_marker"):
        LoopConfig(fail_at_epoch=2)
    with pytest.raises(ValueError, match="loop.mode must be 'max' or 'min', got 'lower'"):
        LoopConfig(mode="lower")
    with pytest.raises(ValueError, match="scaling.placement_strategy must be one of .*, got 'spread'"):
        RayScaling(num_workers=2, placement_strategy="spread")


def test_mode_min_keeps_the_lowest_epoch(tmp_path):
    cfg = LoopConfig(epochs=10, patience=2, mode="min", progress=False)
    summary, _ = fit_local(ToyTask([0.5, 0.2, 0.3, 0.1, 0.4, 0.6]), cfg, tmp_path)
    assert summary["best_epoch"] == 4 and summary["best"] == 0.1 and summary["epoch"] == 6
    cfg = LoopConfig(epochs=10, patience=2, mode="max", progress=False)
    summary, _ = fit_local(ToyTask([0.5, 0.2, 0.3, 0.1, 0.4, 0.6]), cfg, tmp_path / "max")
    assert summary["best_epoch"] == 1 and summary["epoch"] == 3


class HookTask(ToyTask):
    """Records each on_epoch_start call; its return value joins the epoch's row."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[int] = []

    def on_epoch_start(self, model, optimizer, epoch):
        assert isinstance(model, torch.nn.Linear) and isinstance(optimizer, torch.optim.AdamW)
        self.started.append(epoch)
        return {"hooked": epoch * 10}


def test_on_epoch_start_runs_before_every_epoch_also_after_a_resume(tmp_path):
    task = HookTask()
    _, latest = fit_local(task, LoopConfig(epochs=2, progress=False), tmp_path / "a")
    assert task.started == [1, 2]
    resumed = HookTask()
    summary = run_loop(resumed, LoopConfig(epochs=3, progress=False), LocalSession(tmp_path / "b", resume_from=latest))
    assert resumed.started == [3]
    assert [r["hooked"] for r in summary["history"]] == [10, 20, 30]
    assert "hooked" not in fit_local(ToyTask(), LoopConfig(epochs=1, progress=False), tmp_path / "c")[0]["history"][0]


def test_checkpoint_every_keeps_the_last_and_the_early_stop_epoch(tmp_path):
    rows: list[dict] = []
    summary, latest = fit_local(
        ToyTask(), LoopConfig(epochs=5, checkpoint_every=2, progress=False), tmp_path / "a", rows.append
    )
    assert [r["epoch"] for r in rows] == [2, 4, 5]  # the epochs with a checkpoint are reported
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "checkpoint_0002",
        "checkpoint_0004",
        "checkpoint_0005",
    ]
    assert json.loads((latest / "state.json").read_text())["epoch"] == 5
    cfg = LoopConfig(epochs=10, patience=2, checkpoint_every=4, progress=False)
    summary, latest = fit_local(ToyTask([0.1, 0.3, 0.2, 0.25, 0.9]), cfg, tmp_path / "b")
    assert summary["epoch"] == 4 and latest.name == "checkpoint_0004"
    summary, latest = fit_local(
        ToyTask([0.1, 0.3, 0.2, 0.1, 0.9]),
        LoopConfig(epochs=10, patience=2, checkpoint_every=5, progress=False),
        tmp_path / "c",
    )
    assert summary["epoch"] == 4 and latest.name == "checkpoint_0004"
    with pytest.raises(ValueError, match="loop.checkpoint_every must be >= 1, got 0"):
        LoopConfig(checkpoint_every=0)


class SplitTask(ToyTask):
    """ToyTask in `n` batches per epoch, a frozen extra layer, and metrics with each loss."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def build_model(self):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
        model[1].requires_grad_(False)  # a frozen "base"
        return model

    def train_batches(self, epoch, rank, world_size):
        size = 32 // self.n
        return [{"x": self.x[i : i + size]} for i in range(0, 32, size)]

    def loss(self, model, batch):
        loss = super().loss(model, batch)
        return loss, {"examples": len(batch["x"]), "twice": 2 * float(loss.detach())}

    def validate(self, model, rank, world_size):
        return {"ndcg@10": -float(ToyTask.loss(self, model, {"x": self.x})) * 32, "count": 32.0}


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    big, _ = fit_local(SplitTask(2), LoopConfig(epochs=2, progress=False, lr=0.05, grad_clip=0), tmp_path / "a")
    accum, latest = fit_local(
        SplitTask(4), LoopConfig(epochs=2, progress=False, lr=0.05, grad_clip=0, grad_accum=2), tmp_path / "b"
    )
    row = accum["history"][-1]
    assert row["steps"] == 2 and row["train_examples"] == 32 and row["twice"] == pytest.approx(2 * row["train_loss"])
    from safetensors.torch import load_file

    a, b = (
        load_file(str(tmp_path / "a" / "checkpoint_0002" / "model.safetensors")),
        load_file(str(latest / "model.safetensors")),
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_trainable_only_checkpoints_hold_the_trained_parameters_and_resume(tmp_path):
    from safetensors.torch import load_file

    cfg = LoopConfig(epochs=1, progress=False, lr=0.05, trainable_only=True, monitor="")
    first, latest = fit_local(SplitTask(4), cfg, tmp_path / "a")
    assert sorted(load_file(str(latest / "model.safetensors"))) == ["0.bias", "0.weight"]
    assert first["best_epoch"] == 1 and "best_" not in " ".join(first["history"][0])  # no monitor: last is best
    cfg.epochs = 2
    second = run_loop(SplitTask(4), cfg, LocalSession(tmp_path / "b", resume_from=latest))
    assert second["start_epoch"] == 2 and second["best_epoch"] == 2


def test_a_trainable_only_checkpoint_missing_a_trained_weight_is_refused(tmp_path):
    from safetensors.torch import save_file

    from steerrec.train.loop import load_weights

    model = SplitTask(1).build_model()
    save_file({"0.weight": torch.zeros(1, 1)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=r"w.safetensors: .*missing trainable weights \['0.bias'\]"):
        load_weights(model, tmp_path / "w.safetensors", trainable_only=True)


class CountedTask(ToyTask):
    """ToyTask that knows its steps per epoch and has a cheap teacher-forced check."""

    def steps_per_epoch(self, world_size):
        return 4

    def valid_loss(self, model, rank, world_size):
        return {"loss": float(self.loss(model, {"x": self.x})) * 32, "count": 32.0}


def test_schedule_sets_the_lr_of_each_step_and_resumes_from_the_step(tmp_path):
    from steerrec.train.schedule import ScheduleConfig, lr_factor

    sched = ScheduleConfig("cosine", warmup_steps=2, min_ratio=0.1)
    cfg = LoopConfig(epochs=2, progress=False, lr=0.1, schedule=sched, patience=0)
    first, latest = fit_local(CountedTask(), cfg, tmp_path / "a")
    rows = first["history"]
    assert [r["step"] for r in rows] == [4, 8]
    assert rows[0]["lr"] == pytest.approx(0.1 * lr_factor(4, sched, 8))
    assert rows[1]["lr"] == pytest.approx(0.1 * 0.1)  # the last step of the cosine: min_ratio
    cfg.epochs = 3  # resumed: the schedule goes on from step 8 of a 12-step run
    second = run_loop(CountedTask(), cfg, LocalSession(tmp_path / "b", resume_from=latest))
    assert second["history"][-1]["step"] == 12
    assert second["history"][-1]["lr"] == pytest.approx(0.1 * lr_factor(12, sched, 12))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        fit_local(ToyTask(), LoopConfig(epochs=1, progress=False, schedule=ScheduleConfig("cosine")), tmp_path / "c")


def test_max_batches_caps_each_epoch_and_the_schedule_counts_the_capped_steps(tmp_path):
    from steerrec.train.loop import epoch_steps
    from steerrec.train.schedule import ScheduleConfig

    sched = ScheduleConfig("linear", warmup_steps=0, min_ratio=0.0)
    cfg = LoopConfig(epochs=2, progress=False, lr=0.1, schedule=sched, patience=0, max_batches=3)
    assert epoch_steps(CountedTask(), cfg, 1) == 3 and epoch_steps(ToyTask(), cfg, 1) is None
    rows = fit_local(CountedTask(), cfg, tmp_path)[0]["history"]
    assert [(r["steps"], r["step"]) for r in rows] == [(3, 3), (3, 6)]  # of 4 batches an epoch
    assert rows[-1]["lr"] == pytest.approx(0.0)  # the schedule ends at step 6, not 8
    with pytest.raises(ValueError, match="max_batches"):
        LoopConfig(max_batches=-1)


class ContinuedTask(CountedTask):
    """CountedTask that starts from a checkpoint's weights and optimizer (a run continued)."""

    def __init__(self, previous=None, carry=True):
        super().__init__()
        self.previous, self.carry = previous, carry

    def build_model(self):
        from safetensors.torch import load_model

        model = super().build_model()
        if self.previous is not None:
            load_model(model, str(self.previous / "model.safetensors"))
        return model

    def start_optimizer(self):
        return self.previous if self.carry else None


def test_a_run_continues_another_s_optimizer_and_schedule_as_one_run(tmp_path):
    from safetensors.torch import load_file

    from steerrec.train.schedule import ScheduleConfig

    sched = ScheduleConfig("linear", warmup_steps=2)
    one = LoopConfig(epochs=2, progress=False, lr=0.1, schedule=sched, monitor="")
    whole, whole_ckpt = fit_local(ContinuedTask(), one, tmp_path / "whole")
    half = LoopConfig(epochs=1, progress=False, lr=0.1, schedule=sched, monitor="", total_steps=8)
    first, first_ckpt = fit_local(ContinuedTask(), half, tmp_path / "first")
    half.start_step = first["history"][-1]["step"]
    second, second_ckpt = fit_local(ContinuedTask(first_ckpt), half, tmp_path / "second")
    assert [r["step"] for r in second["history"]] == [8]
    assert second["history"][-1]["lr"] == pytest.approx(whole["history"][-1]["lr"])
    a, b = (load_file(str(c / "model.safetensors")) for c in (whole_ckpt, second_ckpt))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # Adam's moments carried over too
    fresh, fresh_ckpt = fit_local(ContinuedTask(first_ckpt, carry=False), half, tmp_path / "fresh")  # new AdamW
    c = load_file(str(fresh_ckpt / "model.safetensors"))
    assert not all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)


def test_full_validation_every_n_epochs_and_patience_in_evaluations(tmp_path):
    task = CountedTask([0.5, 0.4, 0.3, 0.9])  # scores of the full validations, in order
    cfg = LoopConfig(epochs=20, valid_every=3, patience=2, progress=False)
    summary, _ = fit_local(task, cfg, tmp_path)
    rows = summary["history"]
    full = [r["epoch"] for r in rows if "valid_ndcg@10" in r]
    assert full == [3, 6, 9]  # stopped after two evaluations without a better value
    assert summary["best_epoch"] == 3 and summary["epoch"] == 9
    assert all("valid_loss" in r for r in rows if r["epoch"] not in full)  # the cheap check between
    assert "best_ndcg@10" not in rows[0]  # nothing evaluated yet


def test_fit_local_resumes_an_interrupted_run_from_its_folder(tmp_path):
    first, latest = fit_local(ToyTask(), LoopConfig(epochs=2, progress=False, lr=0.05), tmp_path)
    (tmp_path / ".checkpoint_0003.partial").mkdir()  # what a crash during a copy leaves: ignored
    again, latest_again = fit_local(ToyTask(), LoopConfig(epochs=3, progress=False, lr=0.05), tmp_path)
    assert again["start_epoch"] == 3 and latest_again.name == "checkpoint_0003"
    done, same = fit_local(ToyTask(), LoopConfig(epochs=3, progress=False, lr=0.05), tmp_path)
    assert done["start_epoch"] == 4 and same == latest_again  # finished: nothing to run, same checkpoint
