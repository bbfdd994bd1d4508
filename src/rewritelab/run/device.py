"""Devices and processes: this process's place in a torchrun job, the torch device, autocast, all-reduce."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
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


THREADS_PER_CORE = 4  # how far train.threads may oversubscribe the cores (100,000 threads crash torch)


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_threads(threads: int) -> None:
    """Refuse a `train.threads` past `THREADS_PER_CORE` threads per core of this machine, before torch
    is asked to start them (it crashes, or overflows, instead of refusing)."""
    cores = cpu_count()
    if threads > THREADS_PER_CORE * cores:
        raise UserError(
            f"train.threads: {threads:,} threads for {plural(cores, 'core')}; at most "
            f"{THREADS_PER_CORE * cores} ({THREADS_PER_CORE} per core) here, or 0 for torch's default"
        )


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


BF16_MIN_SPEEDUP = 1.3  # native bf16 measured 2.1-2.6x fp32 on CPUs; emulated bf16 is 10-50x slower


def resolved_dtype(dtype: str, device: str | torch.device, frozen_base: bool = False) -> str:
    """`train.dtype` made concrete: `float32` or `bfloat16`, recorded in the run and in its identity.

    `auto` means bf16 on CUDA; on a CPU, bf16 only for a frozen pretrained base (the LoRA arm, whose large
    matmuls need no fp32 master copy) and only where a bf16 matmul measures faster than fp32 here
    (`cpu_bf16_speedup`): the small from-scratch models ran slower under bf16 autocast even on CPUs with
    native bf16 (0.89x: the casts cost more than the small matmuls gain), and emulated bf16 is far slower.
    """
    if dtype != "auto":
        return dtype
    kind = _device_type(device)
    if kind == "cuda" or (frozen_base and _bf16_pays(kind)):
        return "bfloat16"
    return "float32"


def resolved_muon_dtype(muon_dtype: str, device: str | torch.device) -> str:
    """`train.muon_dtype` made concrete: the precision of Muon's Newton-Schulz iterations (`run.optim`).

    `auto` means bf16 (torch.optim.Muon's own choice) where a bf16 matmul is native: on CUDA, and on a CPU
    where it measures faster than fp32 (the iterations then cost 0.4x their fp32 time at the 4 x 128
    model's matrices); fp32 where bf16 is emulated (28-54x slower there, docs/benchmarks.md).
    """
    if muon_dtype != "auto":
        return muon_dtype
    return "bfloat16" if _bf16_pays(_device_type(device)) else "float32"


def _bf16_pays(kind: str) -> bool:
    """Whether bf16 matmuls are native on this device type: always on CUDA, by measurement on a CPU."""
    return kind == "cuda" or (kind == "cpu" and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP)


def _device_type(device: str | torch.device) -> str:
    """The device type a `train.device` value runs on, without failing where it is missing."""
    if isinstance(device, torch.device):
        return device.type
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    return device


@functools.cache
def cpu_bf16_speedup() -> float:
    """fp32 over bf16 time of a matmul at a LoRA base's shape (344 x 576 x 1536, SmolLM2's MLP), best of 5
    on one thread: about 0.1 s, once per process. > 2 with native bf16, < 0.2 where emulated.

    Timed in the thread's CPU time, not wall time, and on one thread: on a loaded machine (a sweep's parent
    beside its runs) a preempted wall-clock timing once read a native-bf16 CPU as slower than fp32, and
    intra-op threads spin while a peer is preempted, so CPU time over several threads is no better."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(344, 576, generator=gen), torch.randn(576, 1536, generator=gen)

    def best(x: torch.Tensor, y: torch.Tensor) -> float:
        x @ y  # warm-up: oneDNN picks its kernel on the first call
        times = []
        for _ in range(5):
            start = time.thread_time()
            x @ y
            times.append(time.thread_time() - start)
        return min(times)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return best(a, b) / max(best(a.bfloat16(), b.bfloat16()), 1e-9)
    finally:
        torch.set_num_threads(threads)


def autocast_for(
    device: torch.device, dtype: str, frozen_base: bool = False
) -> contextlib.AbstractContextManager:
    if resolved_dtype(dtype, device, frozen_base) == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def execution_banner(device: torch.device, dtype: str, frozen_base: bool = False) -> str:
    """One line for the top of a log: what ran, where, at which precision, on how many threads."""
    return (
        f"rewritelab {__version__}, torch {torch.__version__}: device {device}, "
        f"precision {resolved_dtype(dtype, device, frozen_base)}, "
        f"{plural(torch.get_num_threads(), 'CPU thread')}"
    )


def machine() -> str:
    """The computer a run executes on, in one line (recorded in summary.json, shown by the report): the
    CPU model and the cores this process may use, the GPU when there is one, the torch version."""
    cores = cpu_count()
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
