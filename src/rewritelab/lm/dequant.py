"""GGUF files (the built-in SmolLM2) as plain float checkpoints: de-quantized once, cached, read back.

transformers reads a GGUF file one of two ways, by version, architecture and machine: de-quantized into
float tensors as it loads, or, where it has a ggml kernel for the device, with the weights left packed
in their blocks, unpacked by every matmul, which computes in float32 whatever dtype was asked for. The
first is what E6 measures; rewritelab chooses it rather than finding out which one ran:

- the file is read once, de-quantized in float32 (`GgufConfig(dequantize=True)`: no version keeps it
  packed), and saved with its tokenizer by `save_pretrained` into a cache folder keyed by the file's
  sha256 and the transformers version (`cache_root`);
- every run reads that folder at its own dtype: a bf16 base holds the float32 values rounded once, the
  same weights transformers' de-quantizing loader gives, and a plain model with no GGUF marks left.

Reading the folder takes seconds where de-quantizing SmolLM2-135M takes tens of seconds, and the weights
a run computes with no longer depend on whether a kernel happened to be installed.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from rewritelab.errors import UserError
from rewritelab.io import atomic_dir

CACHE_ENV = "REWRITELAB_CACHE"


def cache_root() -> Path:
    """Where rewritelab keeps what it derives once per machine: $REWRITELAB_CACHE, else
    $XDG_CACHE_HOME/rewritelab, else ~/.cache/rewritelab."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rewritelab"


def dequantized(gguf: Path, transformers: Any) -> Path:
    """The folder holding `gguf`'s model in float32 and its tokenizer (both `save_pretrained`), made on
    first use (atomically: a folder with its config.json is complete)."""
    key = f"{gguf.stem}-{file_sha256(gguf)[:16]}-transformers-{transformers.__version__}"
    folder = cache_root() / "dequantized" / key
    if (folder / "config.json").is_file():
        return folder
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, **_dequantizing(transformers)
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, TypeError) as e:
        lines = str(e).strip().splitlines()
        why = lines[0][:200] if lines else type(e).__name__
        raise UserError(f"lm.model: cannot read a causal LM and its tokenizer from {gguf} ({why})") from None
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read once per process for a file of unchanged size and time (a run loads the
    tokenizer and the model from it, each asking)."""
    st = path.stat()
    return _sha256(path.resolve(), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dequantizing(transformers: Any) -> dict[str, Any]:
    """`from_pretrained` options that de-quantize every weight: `GgufConfig(dequantize=True)` in the
    versions that have it (those that may keep GGUF weights packed); earlier ones always de-quantize."""
    config = getattr(transformers, "GgufConfig", None)
    return {} if config is None else {"quantization_config": config(dequantize=True)}
