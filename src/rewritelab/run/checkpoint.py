"""Checkpoints, shared by training (save, resume) and evaluation (load the trained model).

Checkpoints hold only tensors and plain data, so they load with `torch.load(weights_only=True)`: a
checkpoint from elsewhere can be rejected, never executed. Before that, its zip container is verified whole
(`run.container`), and after it the layout and loop state (`read_checkpoint`; `schedule.check_progress`
against the run's schedule), so damage or a hand edit is one line, never a traceback or another model.
With every RNG state restored (one per rank), a CPU run resumed from a checkpoint ends bit-identical to
one never stopped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewritelab.config import to_dict
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_bytes, utc_now
from rewritelab.layout import RUN_CONFIG
from rewritelab.model import GPT
from rewritelab.run.config import RunConfig, same_run
from rewritelab.run.container import Damaged, NotAZip, verify_container
from rewritelab.run.device import Dist
from rewritelab.versions import current_versions

CHECKPOINT_FORMAT = 1
COUNTS = ("step", "epoch", "position", "tokens", "window_steps")  # TrainState's ints (>= 0)
AMOUNTS = ("seconds", "window_loss")  # and its finite floats (>= 0) besides the loss


@dataclass
class TrainState:
    """Where the loop stands: everything besides weights and optimizer moments that resume needs."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    position: int = 0  # batches of `epoch` done
    tokens: int = 0  # tokens (prompt + answer, no padding) trained on
    seconds: float = 0.0  # training wall time, summed over sessions
    loss: float = float("nan")  # loss of the last step
    window_loss: float = 0.0  # sum of step losses since the last `train` metrics line
    window_steps: int = 0
    finished_at: str = ""  # UTC time of the last step (ISO 8601), kept in the checkpoint: see `finish`

    def advance(self, tokens: int, loss: float, batches_per_epoch: int) -> None:
        """Count one finished optimizer step."""
        self.step += 1
        self.position += 1
        if self.position == batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        self.tokens += tokens
        self.loss = loss
        self.window_loss += loss
        self.window_steps += 1

    def finish(self) -> None:
        """Stamp the end of training. The stamp travels in the checkpoint, so re-scoring a run rewrites
        the same summary.json and a run copied into another sweep keeps the time it finished."""
        self.finished_at = utc_now()

    def train_record(self, lr: float, batches_per_epoch: int) -> dict[str, Any]:
        """The `train` line of metrics.jsonl (mean loss since the previous line), starting a new window."""
        record = {
            "kind": "train",
            "step": self.step,
            "epoch": round(self.epoch + self.position / batches_per_epoch, 4),
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "lr": lr,
            "loss": self.window_loss / self.window_steps,
        }
        self.window_loss, self.window_steps = 0.0, 0
        return record

    def eval_record(self, accuracy: dict[str, float | None]) -> dict[str, Any]:
        """The `eval` line of metrics.jsonl: learning-curve accuracies at this step."""
        return {
            "kind": "eval",
            "step": self.step,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "accuracy": accuracy,
        }


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `_orig_mod.` (torch.compile) and `module.` (DDP) prefixes that break resume elsewhere."""
    out = {}
    for key, value in state.items():
        for prefix in ("_orig_mod.", "module."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def checkpoint_payload(
    weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    rng: list[dict[str, Any]],
    cfg: Any,
    vocab_size: int,
    block_size: int,
    total_steps: int,
) -> dict[str, Any]:
    """What checkpoint.pt holds (`weights`: what the run's kind saves of its model; `rng`: the states
    `gather_rng` collected, index = rank; `versions`: the packages that wrote it, which a resume compares)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": weights,
        "optimizer": optimizer.state_dict(),
        "state": dataclasses.asdict(state),
        "rng": rng,
        "config": to_dict(cfg),
        "vocab_size": vocab_size,
        "block_size": block_size,
        "total_steps": total_steps,
        "versions": current_versions(),
    }


def capture_rng() -> dict[str, Any]:
    """Every RNG state of this process as tensors and plain lists (loadable with weights_only=True)."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": [version, list(mt), gauss],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def restore_rng(saved: dict[str, Any]) -> None:
    version, mt, gauss = saved["python"]
    random.setstate((version, tuple(mt), gauss))
    keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(saved["cuda"])


def gather_rng(dist: Dist) -> list[dict[str, Any]]:
    """RNG states of every rank (index = rank): each rank resumes its own dropout stream."""
    if not dist.enabled:
        return [capture_rng()]
    states: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(states, capture_rng())
    return states


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; anything that is not one of ours is a one-line UserError."""
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint; train the run first (rewritelab train RUN_CONFIG --out DIR)")
    fix = "delete it to train from scratch"
    try:
        verify_container(path)  # torch.load checks no CRC and trusts the zip directory: verify it all first
    except NotAZip:
        kind = "damaged, truncated or another kind of file"
        raise UserError(f"{path}: not a checkpoint ({kind}); {fix}") from None
    except Damaged as e:
        raise UserError(f"{path}: damaged ({e}); {fix}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or hostile files
        hostile = "Weights only load failed" in str(e)
        reason = (
            "it holds pickled Python objects, never loaded as they could run code"
            if hostile
            else _first_line(e)
        )
        raise UserError(f"{path}: not a readable checkpoint ({reason}); {fix}") from None
    wrong = _malformed(ckpt)
    if wrong is not None:
        raise UserError(f"{path}: not a rewritelab checkpoint ({wrong}); {fix}")
    return ckpt


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _malformed(ckpt: Any) -> str | None:
    """What in the checkpoint's layout is not as training writes it (None when all is), checked before
    any of it is used: the loop state's fields as `TrainState` types them, and RNG states that
    `restore_rng` can set. Whether the loop state fits the run's schedule is `schedule.check_progress`."""
    kinds = {"model": dict, "optimizer": dict, "state": dict, "rng": list, "config": dict}
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        return "no rewritelab checkpoint format"
    wrong = [key for key, kind in kinds.items() if not isinstance(ckpt.get(key), kind)]
    sizes = ("vocab_size", "block_size")  # the model is built from them before its weights are loaded
    wrong += [key for key in sizes if not (_count(ckpt.get(key)) and 0 < ckpt[key] < 2**31)]
    wrong += [] if _count(ckpt.get("total_steps")) else ["total_steps"]
    if wrong:
        return f"its {wrong[0]} entry is missing or not as training writes it"
    state, fields = ckpt["state"], {f.name for f in dataclasses.fields(TrainState)}
    if state.keys() not in (fields, fields - {"finished_at"}):  # checkpoints before the stamp lack it
        return "the loop state's fields are not TrainState's"
    bad = [name for name in COUNTS if not _count(state[name])]
    bad += [name for name in AMOUNTS if not _amount(state[name])]
    loss = state["loss"]  # NaN before the first step, finite (checked every step) after it
    if not (_amount(loss) if state["step"] != 0 else isinstance(loss, float) and math.isnan(loss)):
        bad.append("loss")
    stamp = state.get("finished_at", "")
    if not (isinstance(stamp, str) and _stamp(stamp)):
        bad.append("finished_at")
    if bad:
        return f"loop state {bad[0]} = {_brief(state[bad[0]])} is not one training writes"
    if not ckpt["rng"] or not all(_rng_state(saved) for saved in ckpt["rng"]):
        return "RNG states that are not the ones training saves"
    return None


def _count(value: Any) -> bool:
    """A count as training keeps it: an int (not a bool) within int64, so it prints and converts."""
    return type(value) is int and 0 <= value < 2**63


def _brief(value: Any) -> str:
    """A value for a one-line message (an int of thousands of digits does not even convert to text)."""
    if type(value) is int and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    return repr(value)[:40]


def _amount(value: Any) -> bool:
    return type(value) is float and math.isfinite(value) and value >= 0


def _stamp(text: str) -> bool:
    """An empty stamp (not finished, or a checkpoint from before the stamp) or a UTC time as `utc_now`."""
    try:
        return not text or dt.datetime.fromisoformat(text).utcoffset() == dt.timedelta(0)
    except ValueError:
        return False


def _rng_state(saved: Any) -> bool:
    """Whether `saved` has the shape `capture_rng` gives it, so that `restore_rng` can set it."""
    if not isinstance(saved, dict) or saved.keys() != {"python", "numpy", "torch", "cuda"}:
        return False
    python, numpy, cpu, cuda = saved["python"], saved["numpy"], saved["torch"], saved["cuda"]
    if not (isinstance(python, list) and len(python) == 3 and isinstance(numpy, list) and len(numpy) == 4):
        return False
    (version, mt, gauss), (keys, pos, has_gauss, cached) = python, numpy
    return (
        type(version) is int and version == 3 and (gauss is None or type(gauss) is float)
        and isinstance(mt, list) and len(mt) == 625 and all(_count(x) and x < 2**32 for x in mt)
        and mt[-1] <= 624  # the index into the 624 words
        and isinstance(keys, torch.Tensor) and keys.dtype == torch.int64 and keys.shape == (624,)
        and bool(((keys >= 0) & (keys < 2**32)).all())
        and _count(pos) and pos <= 624 and _count(has_gauss) and has_gauss <= 1 and type(cached) is float
        and _bytes(cpu) and cpu.numel() == torch.get_rng_state().numel()
        and isinstance(cuda, list) and all(_bytes(t) for t in cuda)
    )  # fmt: skip


def _bytes(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def check_checkpoint(
    ckpt: dict[str, Any],
    cfg: Any,
    path: Path,
    same: Callable[[Any, Any], bool] = same_run,
    vocab_size: int | None = None,
) -> None:
    """Refuse a checkpoint written by another run (other model size, data or schedule, by `same`: the
    run kind's comparison; and another vocabulary, when `vocab_size` is known)."""
    if not same(ckpt["config"], cfg) or vocab_size not in (None, ckpt["vocab_size"]):
        raise UserError(
            f"{path}: written by a different run (model, data or training settings differ from "
            f"{path.parent / RUN_CONFIG}); train into a new --out directory or delete the checkpoint"
        )


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(clean_state_dict(weights))
    except (RuntimeError, KeyError, TypeError) as e:
        raise UserError(
            f"{path}: weights do not fit this model ({_first_line(e)}); delete the checkpoint"
        ) from None


def build_model(cfg: RunConfig, vocab_size: int, block_size: int, device: torch.device) -> GPT:
    """A freshly initialised model, seeded by train.seed (so the init is part of the run's identity)."""
    torch.manual_seed(cfg.train.seed)
    return GPT(cfg.model, vocab_size, block_size).to(device)


def load_trained_model(cfg: RunConfig, ckpt: dict[str, Any], path: Path, device: torch.device) -> GPT:
    """The model a checkpoint holds, on `device`, in eval mode."""
    model = GPT(cfg.model, int(ckpt["vocab_size"]), int(ckpt["block_size"]))
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval()
