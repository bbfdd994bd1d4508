"""Devices and processes: this process's place in a torchrun job, the torch device, autocast, all-reduce."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

import torch

from rewritelab import __version__
from rewritelab.errors import UserError
from rewritelab.textfmt import plural


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this run created the process group and must destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()


def setup_distributed(device: str) -> Dist:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK): NCCL on GPUs, else gloo."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local_rank)
    owns = not torch.distributed.is_initialized()
    if owns:
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, owns_group=owns)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device that is missing is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: cuda is not available here; use device: auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device: mps is not available here; use device: auto or cpu")
    return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)


def precision(device: torch.device, dtype: str) -> str:
    """The resolved `train.dtype`: bf16 on CUDA by default, fp32 elsewhere (bf16 is many times slower
    on CPUs without native bf16, and measured slower even with it for the small CPU models)."""
    return "bfloat16" if dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda") else "float32"


def autocast_for(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    if precision(device, dtype) == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def execution_banner(device: torch.device, dtype: str) -> str:
    """One line for the top of a log: what ran, where, at which precision, on how many threads."""
    return (
        f"rewritelab {__version__}, torch {torch.__version__}: device {device}, "
        f"precision {precision(device, dtype)}, {plural(torch.get_num_threads(), 'CPU thread')}"
    )


def machine() -> str:
    """The computer a run executes on, in one line (recorded in summary.json, shown by the report): the
    CPU model and the cores this process may use, the GPU when there is one, the torch version."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    parts = [f"{_cpu_model()}, {cores} {'core' if cores == 1 else 'cores'}"]
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(0))
    return ", ".join([*parts, f"torch {torch.__version__}"])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def all_reduce_sum(values: list[float], dist: Dist, device: torch.device) -> list[float]:
    if not dist.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()
