"""A LangPTune run folder, written through steerrec.run_folder:

<out>/config.yaml          the LangPTuneConfig (steerrec.config.dump)
<out>/run.json             RunInfo kind "langptune": variant, K, T, J, profile length, test metrics
<out>/metrics.json         one row per finished outer iteration (each phase's last loop row)
<out>/results.json         the test table: the variant, Random and MostPop (NDCG/MRR/Recall/Precision@k),
                           "truth" (profiles naming true likes/dislikes) where the data has truth,
                           this call's train / evaluate seconds, and from the Ray program
                           "handover" (the adapter hand-overs' bytes, seconds)
<out>/queries.json         the ranked queries: greedy test profiles (or history texts)
<out>/tokenizer/           a tiny policy's tokenizer
<out>/iter_NN/             adapter.safetensors, embedder.safetensors, done.json, the phases' checkpoints
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from steerrec.config import dump
from steerrec.langptune.evaluate import evaluate_run
from steerrec.langptune.train import LangPTuneConfig, ProfileWriter, train_langptune
from steerrec.run_folder import (
    CONFIG_FILE,
    METRICS_FILE,
    RESULTS_FILE,
    describe_input,
    new_run_info,
    write_json,
    write_run_info,
)

logger = logging.getLogger(__name__)
QUERIES_FILE = "queries.json"


def train_and_evaluate(
    cfg: LangPTuneConfig, eval_sessions: int = 0, k: int = 20, writer: ProfileWriter | None = None, run: Any = None
) -> dict[str, Any]:
    """Train (resuming), evaluate on the test sessions, write the run folder; returns results.json's
    content. `writer` and `run` go to train_langptune (the Ray program passes its generator group
    and the trainer's run); results then also hold the adapter hand-overs' costs ("handover")."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dump(cfg, out / CONFIG_FILE)
    started = time.perf_counter()
    summary = train_langptune(cfg, writer, run)  # the load of the models counts as training time
    write_json(out / METRICS_FILE, {"iterations": summary["iterations"]})
    trained = time.perf_counter()
    evaluated = evaluate_run(summary["run"], "test", eval_sessions, k)
    results = {"variant": cfg.variant, "metrics": evaluated["metrics"], "baselines": evaluated["baselines"]}
    # this call's wall time: a resumed run's train seconds leave out the finished iterations
    results["seconds"] = {"train": trained - started, "evaluate": time.perf_counter() - trained}
    if "truth" in evaluated:
        results["truth"] = evaluated["truth"]
    handover = handover_summary(summary)
    if handover:
        results["handover"] = handover
    write_json(out / RESULTS_FILE, results)
    write_json(out / QUERIES_FILE, evaluated["queries"])
    details = {
        "variant": cfg.variant,
        "outer_iterations": cfg.outer_iterations,
        "policy_iterations": cfg.policy_loop.epochs,
        "embedder_batches": cfg.embedder_loop.max_batches,
        "profile_length": cfg.policy.rollout.profile_length,
        "model": asdict(cfg.policy.model),
        "embedder": cfg.embedder_phase.embedder.model,
        "test": evaluated["metrics"],
    } | ({"handover": handover} if handover else {})
    write_run_info(out, new_run_info("langptune", cfg.seed, {"data": describe_input(cfg.data)}, **details))
    logger.info("%s: %s", cfg.variant, evaluated["metrics"])
    return results


def handover_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The adapter hand-overs of a run (the start's and each policy phase's, this process's
    and earlier ones' done.json): their count, bytes and mean seconds per part; {} if none."""
    rows = [summary["handover_start"]] if summary.get("handover_start") else []
    rows += [r["handover"] for r in summary["iterations"] if r.get("handover")]
    if not rows:
        return {}
    keys = [key for key in rows[-1] if key.endswith("seconds")]
    means = {f"mean_{key}": sum(r[key] for r in rows) / len(rows) for key in keys}
    return {"count": len(rows), "bytes": rows[-1]["bytes"], "generators": rows[-1]["generators"]} | means
