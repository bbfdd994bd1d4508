"""The run kinds, registered once: a run config's sections say which kind trains it (`lm:` a pretrained
LM with LoRA; none of the registered sections: a GPT from scratch). `train`, `evaluate`, sweeps and
`--reuse` reach runs only through these functions, so a new kind (a `run.RunKind`) is one
`register_kind` call away from every command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.folders import RUN, lock_folder
from rewritelab.lm import LM
from rewritelab.run import SCRATCH, RunKind, evaluate_trained, read_run_config, train_and_evaluate
from rewritelab.textfmt import ProgressMode

KINDS: dict[str, RunKind] = {}  # section → kind; a config with none of these sections is from scratch


def register_kind(kind: RunKind) -> RunKind:
    """Make `kind` the kind of every config that has its section."""
    KINDS[kind.section] = kind
    return kind


register_kind(SCRATCH)
register_kind(LM)


def kind_of(raw: Any) -> RunKind:
    """The kind of plain config data: the kind whose section it has, the from-scratch kind when none
    other's (a config that has `model:` and another kind's section is that kind's, which refuses it)."""
    sections = raw if isinstance(raw, dict) else {}
    marked = [kind for section, kind in KINDS.items() if section in sections and kind is not SCRATCH]
    return marked[0] if marked else SCRATCH


def kind_for(cfg: Any) -> RunKind:
    """The kind of a built run config (by its class)."""
    for kind in KINDS.values():
        if type(cfg) is kind.config_type:
            return kind
    raise TypeError(f"no run kind is registered for a {type(cfg).__name__}")


def build_run_config(raw: dict[str, Any]) -> Any:
    """Plain run config data → the run config of its kind; `UserError` names a bad field."""
    return kind_of(raw).config_from_dict(raw)


def run_identity(cfg: Any) -> dict[str, Any]:
    """What determines a run's results, for a run config of any kind (`--reuse` matches runs by it)."""
    return kind_for(cfg).identity(cfg)


def train_any_run(
    cfg: Any,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) a run of any kind; returns its summary."""
    return train_and_evaluate(kind_for(cfg), cfg, run_dir, data_dir, progress)


def evaluate_any_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    progress: str | bool | None = None,
    max_examples: int | None = None,
) -> dict[str, Any]:
    """Re-score a finished run of any kind (its recorded config.yaml says which), holding the run's lock:
    a run that another process trains or scores is refused. (Scoring checks that the directory holds a
    run, its config and checkpoint, before it writes.)"""
    run_dir = Path(run_dir)
    kind = kind_of(read_run_config(run_dir))
    with lock_folder(run_dir, RUN):
        return evaluate_trained(kind, run_dir, data_dir, splits, None, progress, max_examples)
