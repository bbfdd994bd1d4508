"""`sweep --reuse` copies a finished run whatever versions computed it, and says in one line when they are
not this environment's (the source sweep is fabricated: its runs' configs and summaries, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml

from rewritelab.cli import main
from rewritelab.config import dump_yaml
from rewritelab.sweep import expand, load_sweep, validate_runs
from rewritelab.versions import current_versions
from support import MICRO_DATA, MICRO_MODEL, data_section, fake_summary

SPEC = {"base": {"data": MICRO_DATA, "model": MICRO_MODEL, "train": {"max_steps": 5}}, "seeds": [0],
        "grid": [{"data.num_rules": [4, 8]}]}  # fmt: skip


def finished_sweep(root: Path, spec_path: Path, versions: dict | None) -> None:
    """Each run of the sweep at `spec_path` as a finished run under `root` that recorded `versions`."""
    runs = expand(load_sweep(str(spec_path)))
    for run_id, cfg in validate_runs(runs).items():
        run_dir = root / "runs" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(dump_yaml(cfg))
        summary = fake_summary(data_section(cfg.data.num_rules, 0), 0)
        if versions is not None:
            summary["versions"] = versions
        (run_dir / "summary.json").write_text(json.dumps(summary))


def test_a_reused_run_of_other_versions_says_so_in_one_line_and_the_sweep_goes_on(tmp_path, capsys):
    spec_path = tmp_path / "sweep.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    older = {**current_versions(), "torch": "2.0.0", "numpy": "1.0.0"}
    finished_sweep(tmp_path / "old", spec_path, older)
    out = tmp_path / "new"
    assert main(["sweep", str(spec_path), "--out", str(out), "--reuse", str(tmp_path / "old")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rewritelab: note:")]
    assert len(notes) == 2  # one line per reused run
    source = tmp_path / "old" / "runs" / "num_rules=4.seed=0"
    assert notes[0] == (
        f"rewritelab: note: reused run num_rules=4.seed=0 (from {source}) ran with torch 2.0.0 "
        f"(now {torch.__version__}), numpy 1.0.0 (now {np.__version__}); continuing"
    )
    assert json.loads((out / "runs" / "num_rules=8.seed=0" / "summary.json").read_text())["versions"] == older


def test_a_reused_run_of_the_same_or_unrecorded_versions_is_silent(tmp_path, capsys):
    spec_path = tmp_path / "sweep.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    for name, versions in (("same", current_versions()), ("before", None)):
        finished_sweep(tmp_path / name, spec_path, versions)
        out = tmp_path / f"into-{name}"
        assert main(["sweep", str(spec_path), "--out", str(out), "--reuse", str(tmp_path / name)]) == 0
        err = capsys.readouterr().err
        assert "reused 2 finished runs" in err and "note:" not in err
