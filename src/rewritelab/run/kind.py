"""Run kinds: what a from-scratch GPT and a pretrained LM with LoRA do differently, behind one small
interface, so that one training loop (`run.train`) and one final evaluation (`run.evaluate`) serve both.

A kind says how its config is read (`section`, `config_from_dict`), what it builds for a run (tokenizer,
encoded splits, model: `build`, `load`), how a step computes its loss (`optimizer`, `loss_module`,
`train_step`), how it scores (`correct` for learning curves, `score_split` for the final evaluation),
what the checkpoint holds (`weights`, `load_weights`) and what it leaves beside it (`finish`). The rest —
schedule, seeded batches, data position, metrics.jsonl, exact-resume checkpoints, the finish stamp, the
divergence check, signals, convergence, the run directory — is shared. `rewritelab.kinds` registers them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewritelab.data import Dataset, Split, check_memory
from rewritelab.errors import UserError
from rewritelab.run.config import TrainConfig, run_identity
from rewritelab.run.device import Dist, check_threads
from rewritelab.textfmt import Progress


@dataclass
class Built:
    """What a kind builds for one run: the config (its data section the dataset's own when it was read
    from --data), the dataset as the kind trains on it, the tokenizer, the encoded splits (each with
    `lengths` and `len`), the model, and the sizes the checkpoint records."""

    cfg: Any
    dataset: Dataset
    tokenizer: Any
    encoded: dict[str, Any]
    model: nn.Module
    vocab_size: int
    block_size: int  # the longest sequence of any split, in tokens


def longest(encoded: dict[str, Any]) -> int:
    """The longest encoded sequence of any split (tokens)."""
    return max(int(e.lengths.max()) for e in encoded.values() if len(e))


class RunKind(ABC):
    """One kind of run. Subclass it, fill in the abstract methods, register an instance in
    `rewritelab.kinds`: the loop, the evaluation, sweeps, the store and reports then take it as it is."""

    section: str  # the config section only this kind has (`model`, `lm`): it tells the kind of a config
    config_type: type  # the dataclass `config_from_dict` returns (data:, train: and the kind's section)
    frozen_base = False  # a frozen pretrained base: bf16 base weights where that is faster, fp32 adapter
    distributed = False  # trains data-parallel under torchrun

    # --- config ---------------------------------------------------------------------------------------

    @abstractmethod
    def config_from_dict(self, raw: dict[str, Any]) -> Any:
        """Plain config data → this kind's run config; `UserError` names a bad field."""

    def identity(self, cfg: Any) -> dict[str, Any]:
        """What determines the run's results (`run.config.run_identity`, at this kind's precision)."""
        return run_identity(cfg, self.frozen_base)

    def same_run(self, recorded: Any, cfg: Any) -> bool:
        """Whether a config recorded in a run directory (plain data) describes the same run as `cfg`."""
        try:
            return self.identity(self.config_from_dict(recorded)) == self.identity(cfg)
        except UserError:
            return False

    # --- model and data -------------------------------------------------------------------------------

    def check_fits(self, cfg: Any, data: bool = True) -> None:
        """Refuse, before anything is built or written, a run this machine cannot hold: more threads than
        `check_threads` allows, or (`data`: the run generates its dataset) more data than the memory
        available. A kind that knows its model's size from the config alone checks that too."""
        check_threads(cfg.train.threads)
        if data:
            check_memory(cfg.data)

    @abstractmethod
    def build(self, cfg: Any, dataset: Dataset, device: torch.device) -> Built:
        """Tokenizer, every split encoded, and a freshly initialised model (seeded by train.seed)."""

    def load(
        self, cfg: Any, dataset: Dataset, ckpt: dict[str, Any], path: Path, device: torch.device
    ) -> Built:
        """The trained model of a checkpoint, for the final evaluation (eval mode)."""
        built = self.build(cfg, dataset, device)
        self.load_weights(built.model, ckpt["model"], path)
        built.model.eval()
        return built

    # --- one step -------------------------------------------------------------------------------------

    @abstractmethod
    def optimizer(self, model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
        """The optimizer over the trainable parameters (the loop sets its learning rate every step)."""

    def loss_module(self, model: nn.Module) -> nn.Module:
        """The module `train_step` runs forward through (DistributedDataParallel wraps it under torchrun)."""
        return model

    @abstractmethod
    def train_step(
        self,
        net: nn.Module,
        enc: Any,
        batch: np.ndarray,
        tc: TrainConfig,
        dist: Dist,
        device: torch.device,
        amp: contextlib.AbstractContextManager,
    ) -> float:
        """Forward and backward over this process's share of the global batch `batch` (indices into
        `enc`); the gradient is that of the mean loss over the batch's targets. Returns this process's
        share of that mean (the loop sums the shares over processes)."""

    # --- scoring --------------------------------------------------------------------------------------

    @abstractmethod
    def correct(
        self, model: nn.Module, enc: Any, indices: np.ndarray, device: torch.device, amp: Any
    ) -> np.ndarray:
        """Greedy exact match of each example in `indices`, for the learning curves."""

    @abstractmethod
    def score_split(
        self, built: Built, split: Split, amp: Any, progress: Progress
    ) -> tuple[np.ndarray, list]:
        """(correct, prediction) per example of a test split, for the final evaluation."""

    # --- checkpoint and what is left at the end -------------------------------------------------------

    @abstractmethod
    def weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The tensors the checkpoint's `model` entry holds (all weights, or an adapter's)."""

    @abstractmethod
    def load_weights(self, model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
        """Put `weights` (from the checkpoint at `path`) into `model`; `UserError` when they do not fit."""

    @abstractmethod
    def finish(self, model: nn.Module, run_dir: Path) -> None:
        """Write what the run leaves besides checkpoint.pt once training is done (rank 0)."""
