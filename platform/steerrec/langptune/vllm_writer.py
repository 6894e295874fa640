"""The generator group as vLLM engines (a cluster): ray.data.llm with a LoRA request per iteration.

A `ProfileWriter` for the Ray program's trainer (cfg.ray.engine = "vllm"). Its hand-over
writes the trainer's adapter as a peft folder (adapter_config.json + adapter_model.safetensors,
`save_pretrained`) under a new name per sync, copies it to `vllm.lora_path` when that is a
bucket, and tags the next rows with that name (steerrec.llm.vllm_engine.lora_rows); each
engine loads a name the first time a row asks for it, so the load's seconds land in the
first generation after a sync and are not measured apart. vLLM itself runs only in the
engine actors that ray.data.llm starts: nothing here imports it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from steerrec.llm.base import EngineConfig

logger = logging.getLogger(__name__)
INDEX = "_steerrec_row"  # the rows' order, restored after the engines


class VLLMProfileWriter:
    def __init__(self, engine: EngineConfig, adapters: Path) -> None:
        if engine.engine != "vllm" or not engine.vllm.max_lora_rank:
            raise ValueError(f"the vLLM profile writer needs engine=vllm and vllm.max_lora_rank > 0, got {engine}")
        self.engine, self.adapters = engine, Path(adapters)
        self.syncs = 0
        self.adapter = ""  # what rows' `model` names: the current adapter
        self.processor: Any = None

    def sync(self, policy: Any) -> dict[str, Any]:
        started = time.perf_counter()
        name = f"langptune_{self.syncs:03d}"
        self.syncs += 1
        folder = self.adapters / name
        policy.save_pretrained(str(folder), safe_serialization=True)
        written = time.perf_counter()
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        bucket = self.engine.vllm.lora_path
        if bucket:
            from pyarrow import fs

            fs.copy_files(str(folder.absolute()), f"{bucket.rstrip('/')}/{name}")
        self.adapter = name if bucket else str(folder.absolute())
        done = time.perf_counter()
        out = {"bytes": size, "generators": self.engine.vllm.concurrency, "serialise_seconds": written - started}
        return out | {"upload_seconds": done - written, "seconds": done - started}

    def generate(self, rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
        """Rows through the vLLM processor with the current adapter, in their order (`seed`
        is not used: vLLM samples each row with its own sampling_params seed, if any)."""
        import ray
        from steerrec.llm.base import build_engine
        from steerrec.llm.vllm_engine import lora_rows

        if not self.adapter:
            raise RuntimeError("sync the adapter before generating")
        if self.processor is None:
            self.processor = build_engine(self.engine)
        tagged = [{**r, INDEX: i} for i, r in enumerate(lora_rows(rows, self.adapter))]
        out = self.processor(ray.data.from_items(tagged)).take_all()
        out.sort(key=lambda r: r[INDEX])
        return [{k: v for k, v in r.items() if k != INDEX} for r in out]
