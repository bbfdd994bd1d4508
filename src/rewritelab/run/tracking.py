"""Experiment tracking: the records of metrics.jsonl mirrored to TensorBoard, Weights & Biases or trackio.

metrics.jsonl stays the source of truth. A tracking session (`tracking`, opened by the run pipelines
around training and the final evaluation) attaches a sink to the run's `MetricsLog`, so every record
written there — train lines, learning-curve evaluations, whatever kinds the loops add — is also sent to
the trackers named in `train.track`, as scalars `KIND/FIELD` (nested fields joined with `/`, e.g.
`eval/accuracy/test_unseen`) at the record's step. The session also logs the resolved config when it
opens and the final accuracies (`final/accuracy/SPLIT`) when the run is evaluated. Nothing here needs an
account or the network: TensorBoard writes event files, W&B runs offline unless WANDB_MODE says
otherwise, trackio writes its local database. Each tracker's package is imported only when asked for.

    RUN_DIR/tracking/tensorboard/   TensorBoard event files (`tensorboard --logdir RUN_DIR/tracking`)
    RUN_DIR/tracking/wandb/         W&B offline run (`wandb sync RUN_DIR/tracking/wandb/offline-run-*`)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewritelab.config import dump_yaml, to_dict
from rewritelab.errors import UserError
from rewritelab.layout import METRICS, RUNS_DIR, TRACKING_DIR
from rewritelab.run.config import TRACKERS
from rewritelab.run.rundir import metrics_sink

PROJECT = "rewritelab"  # W&B and trackio project, unless WANDB_PROJECT / TRACKIO_PROJECT say otherwise
INSTALL = "pip install 'rewritelab[track]'"


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """A metrics record's numbers as `KIND/FIELD` scalars (bools, strings, None and the step left out)."""
    kind = str(record.get("kind", "metrics"))
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}", item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix] = float(value)

    for key, value in record.items():
        if key not in ("kind", "step"):
            walk(f"{kind}/{key}", value)
    return out


class TensorBoard:
    """Event files under RUN_DIR/tracking/tensorboard. The writer opens at the first record with
    `purge_step` at its step, so a resumed run drops what the interrupted one logged past its checkpoint."""

    def __init__(self, run_dir: Path, config: dict[str, Any]):
        tensorboard = _require("torch.utils.tensorboard", "tensorboard")
        self.writer_class, self.log_dir = tensorboard.SummaryWriter, run_dir / TRACKING_DIR / "tensorboard"
        self.config, self.writer = config, None

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            self.writer = self.writer_class(log_dir=str(self.log_dir), purge_step=step)
            self.writer.add_text("config", "```\n" + dump_yaml(self.config) + "```", step)
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WandB:
    """A W&B run in RUN_DIR/tracking/wandb, offline unless WANDB_MODE is set; one id per run directory,
    so a resumed run continues its W&B run."""

    def __init__(self, run_dir: Path, config: dict[str, Any]):
        self.wandb = wandb = _require("wandb", "wandb")
        folder = run_dir / TRACKING_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT), name=run_dir.name, group=_group(run_dir),
            id=_run_id(run_dir), dir=str(folder), mode=os.environ.get("WANDB_MODE", "offline"),
            config=config, resume="allow",
        )  # fmt: skip

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()
        self.wandb.teardown()  # waits for its service to write the run out (finish alone may return first)


class Trackio:
    """A trackio run (its local database: TRACKIO_DIR, by default under the Hugging Face cache)."""

    def __init__(self, run_dir: Path, config: dict[str, Any]):
        self.trackio = _require("trackio", "trackio")
        with contextlib.redirect_stdout(None):  # its banner would mix with the run's own output
            self.run = self.trackio.init(
                project=os.environ.get("TRACKIO_PROJECT", PROJECT), name=run_dir.name, group=_group(run_dir),
                config=config, resume="allow", auto_log_cpu=False, auto_log_gpu=False, embed=False,
            )  # fmt: skip

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        with contextlib.redirect_stdout(None):
            self.run.finish()


_CLASSES = dict(zip(TRACKERS, (TensorBoard, WandB, Trackio), strict=True))


class Session:
    """The open trackers of one run: `record` sends a metrics record to each, `summary` the final
    evaluation."""

    def __init__(self, trackers: list[Any]):
        self.trackers = trackers

    def record(self, record: dict[str, Any]) -> None:
        values = scalars(record)
        if values:
            for tracker in self.trackers:
                tracker.log(int(record.get("step", 0)), values)

    def summary(self, summary: dict[str, Any]) -> None:
        """The final accuracies (and trace metrics) of a finished run, at its last step."""
        if not summary:
            return
        final = {k: summary[k] for k in ("accuracy", "trace_accuracy", "step_accuracy") if k in summary}
        self.record({"kind": "final", "step": summary.get("train", {}).get("steps", 0), **final})


@contextlib.contextmanager
def tracking(cfg: Any, run_dir: str | os.PathLike, enabled: bool = True) -> Iterator[Session]:
    """Open the trackers `cfg.train.track` names for the run in `run_dir` (none when not `enabled`, e.g.
    on the other ranks of a torchrun job) and mirror its metrics.jsonl records to them until the end."""
    run_dir = Path(run_dir)
    names = list(cfg.train.track) if enabled else []
    trackers: list[Any] = []
    try:
        config = to_dict(cfg)
        for name in names:
            trackers.append(_CLASSES[name](run_dir, config))
        session = Session(trackers)
        with metrics_sink(run_dir / METRICS, session.record):
            yield session
    finally:
        for tracker in trackers:
            tracker.close()


def _require(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"train.track: {package} needs the {package!r} package; {INSTALL}") from None


def _run_id(run_dir: Path) -> str:
    return hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]


def _group(run_dir: Path) -> str | None:
    """The sweep a run belongs to (SWEEP_DIR/runs/RUN_ID), so a tracker can group a sweep's runs."""
    return run_dir.resolve().parent.parent.name if run_dir.resolve().parent.name == RUNS_DIR else None
