"""`rewritelab converged SWEEP --rerun FILE`: the convergence rule written as a sweep file."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from rewritelab.cli import main
from rewritelab.sweep import expand, load_sweep

ROOT = Path(__file__).resolve().parents[2]


def finished_sweep(root: Path, falling: set[str], max_steps: int | None = 100) -> Path:
    """A sweep directory over I = 2, 4 (seeds 0, 1) whose runs in `falling` still lose loss at the end."""
    config = yaml.safe_load((ROOT / "examples/configs/tiny_run.yaml").read_text())
    config["train"]["max_steps"] = max_steps
    raw = {"preset": "tiny", "base": config, "grid": [{"data.num_rules": [2, 4]}], "seeds": [0, 1]}
    root.mkdir()
    (root / "sweep.yaml").write_text(yaml.safe_dump(raw))
    for run in expand(load_sweep(str(root / "sweep.yaml"))):
        folder = root / "runs" / run.run_id
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text("{}")
        losses = {90: 0.5, 100: 0.1} if run.run_id in falling else {90: 0.05, 100: 0.05}
        lines = [{"kind": "train", "step": step, "loss": 1.0} for step in range(10, 90, 10)]
        lines += [{"kind": "train", "step": step, "loss": loss} for step, loss in losses.items()]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def test_rerun_retrains_each_unconverged_condition_with_every_seed_for_twice_as_long(tmp_path, capsys):
    sweep = finished_sweep(tmp_path / "s", {"num_rules=4.seed=1"})
    out = tmp_path / "rerun.yaml"
    assert main(["converged", str(sweep), "--rerun", str(out)]) == 0
    assert "num_rules=4.seed=1: loss drop 0.4 nats" in out.read_text()
    runs = expand(load_sweep(str(out)))
    assert sorted(r.run_id for r in runs) == ["num_rules=4.seed=0", "num_rules=4.seed=1"]  # the same ids
    train = runs[0].config["train"]
    assert (train["max_steps"], train["epochs"], train["eval_every"]) == (200, 20, 200)
    assert f"wrote {out}" in capsys.readouterr().out


def test_rerun_doubles_the_epochs_where_no_step_cap_is_set(tmp_path):
    sweep = finished_sweep(tmp_path / "s", {"num_rules=2.seed=0"}, max_steps=None)
    assert main(["converged", str(sweep), "--rerun", str(tmp_path / "r.yaml")]) == 0
    train = expand(load_sweep(str(tmp_path / "r.yaml")))[0].config["train"]
    assert train["epochs"] == 20 and train.get("max_steps") is None


def test_rerun_writes_nothing_when_every_run_converged(tmp_path, capsys):
    sweep = finished_sweep(tmp_path / "s", set())
    assert main(["converged", str(sweep), "--rerun", str(tmp_path / "r.yaml")]) == 0
    assert not (tmp_path / "r.yaml").exists() and "nothing to re-run" in capsys.readouterr().out


def test_rerun_never_replaces_a_file_and_takes_one_sweep(tmp_path, capsys):
    sweep = finished_sweep(tmp_path / "s", {"num_rules=4.seed=1"})
    mine = tmp_path / "mine.yaml"
    mine.write_text("my notes\n")
    assert main(["converged", str(sweep), "--rerun", str(mine)]) == 2
    printed = capsys.readouterr()
    assert mine.read_text() == "my notes\n" and "never replaces" in printed.err and not printed.out
    assert main(["converged", str(sweep), str(sweep), "--rerun", str(tmp_path / "r.yaml")]) == 2
    assert not (tmp_path / "r.yaml").exists()
