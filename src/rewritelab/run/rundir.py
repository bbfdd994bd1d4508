"""The run directory contract: the names of its files, the data a run is trained on, the checks that a
directory holds this run (config and data manifest), the finished run's summary, and metrics.jsonl.

    RUN_DIR/config.yaml          the resolved run config (written before training)
    RUN_DIR/data_manifest.json   the dataset's manifest: a run continues only on the data it started with
    RUN_DIR/checkpoint.pt        weights, optimizer, loop state and RNG states (see run.checkpoint)
    RUN_DIR/metrics.jsonl        train and eval (learning-curve) lines, appended as training goes
    RUN_DIR/predictions/SPLIT.jsonl   what the model wrote for each test example
    RUN_DIR/summary.json         the final evaluation; written last, it marks the run finished
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from rewritelab.config import describe_differences, differences, dump_yaml, load_yaml, to_dict
from rewritelab.data import (
    MANIFEST_CHECKSUM,
    Dataset,
    generate_dataset,
    load_dataset,
    manifest_without_validation,
    without_validation,
)
from rewritelab.errors import UserError
from rewritelab.io import append_text, atomic_write_json, atomic_write_text, dumps_json, read_json
from rewritelab.layout import (
    DATA_MANIFEST,
    DATASET_MANIFEST,
    RUN_CONFIG,
    RUNS_DIR,
    SPLITS,
    SUMMARY,
    SWEEP_FILE,
    VALIDATION,
)
from rewritelab.run.config import EXECUTION_FIELDS, same_run
from rewritelab.run.device import Dist

C = TypeVar("C")  # a run config: RunConfig, or another run kind with a `data` section


def load_data(cfg: C, data_dir: str | os.PathLike | None) -> tuple[C, Dataset]:
    """The run's dataset: generated from `cfg.data` (deterministic), or read from `data_dir`, in which
    case the returned config's data section is the dataset's own spec."""
    if data_dir is None:
        dataset = generate_dataset(cfg.data)
    else:
        if not Path(data_dir).is_dir():
            raise UserError(f"--data {data_dir}: no such directory; give a directory written by `generate`")
        dataset = load_dataset(data_dir)
        cfg = dataclasses.replace(cfg, data=dataset.spec)  # type: ignore[type-var]
    missing = [name for name in SPLITS if name not in dataset.splits]
    if missing:
        raise UserError(f"dataset: missing split {missing[0]!r}; regenerate the dataset")
    if len(dataset.splits["train"]) == 0:
        raise UserError("dataset: the train split is empty; raise data.budget or data.examples_per_rule")
    return cfg, dataset


def data_identity(manifest: Any) -> Any:
    """A manifest without what does not change the data: the file hashes and manifest checksum only a
    written dataset has, and the package version (a resumed run must survive an upgrade that generates
    the same examples)."""
    if not isinstance(manifest, dict):
        return manifest
    volatile = ("files", MANIFEST_CHECKSUM, "rewritelab_version")
    return json.loads(json.dumps({k: v for k, v in manifest.items() if k not in volatile}))


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The raw config.yaml of a run directory (either run kind), or a clear error if there is none."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory; give a directory written by `rewritelab train`")
    if not (run_dir / RUN_CONFIG).is_file() and (run_dir / SWEEP_FILE).is_file():
        runs = sorted(p.name for p in (run_dir / RUNS_DIR).glob("*") if (p / RUN_CONFIG).is_file())
        shown = ", ".join(runs[:4]) + (f", … ({len(runs)} in all)" if len(runs) > 4 else "")
        raise UserError(
            f"{run_dir}: a sweep directory, not a run directory; give one of its runs, "
            f"`{run_dir / RUNS_DIR}/ID` with ID one of: {shown or 'none yet'}"
        )
    if not (run_dir / RUN_CONFIG).is_file():
        raise UserError(
            f"{run_dir}: not a run directory (no {RUN_CONFIG}); give a directory written by `train`"
        )
    return load_yaml(run_dir / RUN_CONFIG)


def as_recorded(run_dir: Path, dataset: Dataset) -> Dataset:
    """The dataset a run directory trains and is scored on: a run recorded before validation splits
    existed (its data_manifest.json has none) continues on the data it started with, without one."""
    path = run_dir / DATA_MANIFEST
    if VALIDATION not in dataset.splits or not path.is_file():
        return dataset
    try:
        recorded = read_json(path)
    except (OSError, ValueError):
        return dataset  # check_data_manifest names the damage
    return dataset if _has_validation(recorded) else without_validation(dataset)


def _has_validation(manifest: Any) -> bool:
    return isinstance(manifest, dict) and VALIDATION in (manifest.get("splits") or {})


def check_data_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """A run continues only on the data it started with."""
    path = run_dir / DATA_MANIFEST
    if path.is_file() and data_identity(read_json(path)) != data_identity(manifest):
        raise UserError(
            f"{path}: this run was made with other data than the data given now; pass the same --data "
            "directory (or none), or train into a new --out directory"
        )


def finished_summary(
    run_dir: Path, cfg: Any, data_dir: str | os.PathLike | None, same: Callable[[Any, Any], bool] = same_run
) -> dict | None:
    """The summary of a finished run of this config, None if unfinished; UserError if it is another run.

    `same` compares a recorded config with `cfg` (another run kind, e.g. `lm:` runs, brings its own)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir}: exists and is not a directory; choose another run directory")
    path = run_dir / SUMMARY
    if not path.is_file():
        return None
    summary = read_summary(path)
    recorded = summary.get("config")
    if data_dir is not None and isinstance(recorded, dict):  # the data is compared through its manifest
        recorded = {**recorded, "data": to_dict(cfg.data)}
        if not _same_data(Path(data_dir) / DATASET_MANIFEST, run_dir / DATA_MANIFEST):
            raise _other_run(
                run_dir, "the data changed (the --data directory is not the dataset it trained on)"
            )
    if not same(recorded, cfg):
        raise _other_run(run_dir, run_difference(recorded, cfg))
    return summary


def read_summary(path: Path) -> dict[str, Any]:
    """A finished run's summary.json; one cut short or garbled is a one-line error naming the fix."""
    try:
        summary = read_json(path)
    except ValueError:  # not JSON, or not UTF-8
        summary = None
    if not isinstance(summary, dict):
        raise UserError(f"{path}: damaged; delete it (the checkpoint is kept) and re-run to re-evaluate")
    return summary


def _same_data(manifest: Path, recorded: Path) -> bool:
    if not (manifest.is_file() and recorded.is_file()):
        return False
    given, trained = read_json(manifest), read_json(recorded)
    if not _has_validation(trained):  # trained before validation splits: the rest must be the same
        given = manifest_without_validation(given)
    return data_identity(given) == data_identity(trained)


def run_difference(recorded: Any, cfg: Any) -> str:
    """What differs between the config a run directory recorded and `cfg`, in the fields that define a
    run's results (how it executes aside), for the message that refuses the directory."""
    if not isinstance(recorded, dict):
        return f"its {RUN_CONFIG} is not a run config"
    execution = [f"train.{name}" for name in EXECUTION_FIELDS]
    diffs = [d for d in differences(recorded, to_dict(cfg)) if d[0] not in execution]
    why = describe_differences(diffs)
    if diffs and {path for path, _, _ in diffs} <= {"train.max_steps", "train.epochs"}:
        why += (
            "; a run is not extended: its learning rate warms up and decays over its own number of steps, "
            "so a longer run is another run, trained from the start"
        )
    return why


def _other_run(run_dir: Path, why: str) -> UserError:
    return UserError(
        f"{run_dir}: holds a different run: {why}; pick a new --out directory, or delete this one to start "
        "over"
    )


def prepare_run_dir(
    run_dir: Path, cfg: Any, manifest: dict[str, Any], dist: Dist, same: Callable[[Any, Any], bool] = same_run
) -> None:
    """Refuse a directory of another run (`same` as for `finished_summary`); record the resolved config
    and the data manifest."""
    config_path = run_dir / RUN_CONFIG
    if config_path.is_file() and not same(recorded := load_yaml(config_path), cfg):
        raise _other_run(run_dir, run_difference(recorded, cfg))
    check_data_manifest(run_dir, manifest)
    if dist.is_main:
        atomic_write_text(config_path, dump_yaml(cfg))
        atomic_write_json(run_dir / DATA_MANIFEST, manifest)


MetricsSink = Callable[[dict[str, Any]], None]
_SINKS: dict[Path, list[MetricsSink]] = {}  # metrics.jsonl path -> who else receives its records


@contextlib.contextmanager
def metrics_sink(path: Path, sink: MetricsSink) -> Iterator[None]:
    """While open, every record a `MetricsLog` writes to `path` is also passed to `sink` (experiment
    trackers: see run.tracking), whichever training loop writes it."""
    key = Path(path).resolve()
    _SINKS.setdefault(key, []).append(sink)
    try:
        yield
    finally:
        _SINKS[key].remove(sink)
        if not _SINKS[key]:
            del _SINKS[key]


class MetricsLog:
    """metrics.jsonl: appended as training goes, cut back to the checkpoint's step on resume; each record
    also goes to the sinks attached to the file (`metrics_sink`)."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Keep the lines up to `step`, so a resumed run's file equals an uninterrupted one's."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for raw in self.path.read_bytes().splitlines(keepends=True):
            try:
                line = raw.decode("utf-8")
                record = json.loads(line)
            except ValueError:  # not UTF-8, or not JSON
                break  # a line cut short by a kill (or garbled): it and anything after are redone
            if not (line.endswith("\n") and isinstance(record, dict)) or record.get("step", 0) > step:
                break
            kept.append(line)
        atomic_write_text(self.path, "".join(kept))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            append_text(self.path, dumps_json(record) + "\n")  # a full disk names the file
            for sink in _SINKS.get(self.path.resolve(), ()):
                sink(record)
