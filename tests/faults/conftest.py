"""Fixtures of the fault-injection battery: a user's folder whose files must survive byte for byte, a
snapshot of a folder to compare, another process holding a folder's lock, a command that must be refused
in one line, a run, sweep and dataset written once to copy, and a finished tiny run (with what `evaluate`
wrote in it) whose checkpoint can be damaged."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from rewritelab.cli import main
from rewritelab.config import load_yaml
from support import TINY

# Another rewritelab process writing a folder: it takes the folder's lock, says so, and waits.
HOLDER = (
    "import sys\n"
    "from rewritelab.folders import lock_folder\n"
    "with lock_folder(sys.argv[1], sys.argv[2]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` and its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def files_of() -> Callable[[Path], dict[str, bytes | None]]:
    return snapshot


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder of the user's that shares names with what rewritelab writes: a metrics.jsonl, a log under
    logs/, a results.sqlite with an accounts table, a manifest.json and a report.html of their own."""
    root = tmp_path / "mine"
    (root / "logs").mkdir(parents=True)
    (root / "metrics.jsonl").write_text('{"epoch": 1, "val_loss": 0.25}\n', encoding="utf-8")
    (root / "logs" / "num_rules=2.seed=0.log").write_text("my own log\n", encoding="utf-8")
    (root / "manifest.json").write_text('{"name": "my web app", "start_url": "/"}\n', encoding="utf-8")
    (root / "report.html").write_text("<html><body>Quarterly report</body></html>\n", encoding="utf-8")
    (root / "notes.txt").write_text("precious", encoding="utf-8")
    with sqlite3.connect(root / "results.sqlite") as db:
        db.execute("CREATE TABLE accounts (name TEXT, balance REAL)")
        db.execute("INSERT INTO accounts VALUES ('ada', 10.5)")
    db.close()
    return root


class LockHolders:
    """Child processes, each holding one folder's lock until killed."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def hold(self, folder: Path, kind: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        proc.kill()  # SIGKILL: no clean-up code runs, the OS alone drops the lock
        proc.wait()


@pytest.fixture
def lock_holders() -> Iterator[LockHolders]:
    holders = LockHolders()
    yield holders
    for proc in holders.procs:
        if proc.poll() is None:
            holders.kill(proc)


@pytest.fixture
def sweep_file(tmp_path) -> Path:
    """A one-run sweep of the suite's tiny run (`num_rules=2.seed=0`), two training steps long."""
    base = load_yaml(TINY)
    base["train"].update(max_steps=2, eval_every=0)
    path = tmp_path / "tiny-sweep.yaml"
    raw = {"description": "one tiny run", "base": base, "grid": [{"data.num_rules": [2]}], "seeds": [0]}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture
def refuses(capsys) -> Callable[..., str]:
    """Run the CLI: it must end with exit 2 and one line on stderr holding every needle; returns the line."""

    def check(argv: list, *needles: str) -> str:
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("rewritelab: error: "), err
        assert all(needle in err for needle in needles), err
        return err

    return check


@pytest.fixture(scope="session")
def outputs(tmp_path_factory) -> Path:
    """Written once: a tiny trained run (`run`), its one-run sweep (`sweep`, from `tiny-sweep.yaml`) and a
    dataset (`data`); tests copy what they change."""
    root = tmp_path_factory.mktemp("outputs")
    base = load_yaml(TINY)
    base["train"].update(max_steps=2, eval_every=0)
    raw = {"description": "one tiny run", "base": base, "grid": [{"data.num_rules": [2]}], "seeds": [0]}
    (root / "tiny-sweep.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    short = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--progress", "none"]
    assert main(["train", str(TINY), "--out", str(root / "run"), *short]) == 0
    assert main(["sweep", str(root / "tiny-sweep.yaml"), "--out", str(root / "sweep")]) == 0
    assert main(["generate", str(TINY), "--out", str(root / "data")]) == 0
    return root


def run_outputs(run: Path) -> dict[str, bytes]:
    """What `evaluate` writes in a run folder (summary.json, predictions/*.jsonl), by name."""
    paths = [run / "summary.json", *sorted((run / "predictions").glob("*"))]
    return {str(p.relative_to(run)): p.read_bytes() for p in paths if p.is_file()}


@pytest.fixture
def outputs_of() -> Callable[[Path], dict[str, bytes]]:
    return run_outputs


@pytest.fixture(scope="session")
def tiny_finished_run(tmp_path_factory) -> Path:
    """The suite's tiny run, trained for 20 steps and evaluated, once per session; tests take a copy."""
    run = tmp_path_factory.mktemp("finished") / "run"
    short = ["--set", "train.max_steps=20", "--set", "train.eval_every=0", "--progress", "none"]
    assert main(["train", str(TINY), "--out", str(run), *short]) == 0
    return run


@pytest.fixture
def finished_run(tiny_finished_run, tmp_path) -> Path:
    """A copy of the tiny finished run (checkpoint.pt, summary.json, predictions/) to damage."""
    return Path(shutil.copytree(tiny_finished_run, tmp_path / "run"))


@pytest.fixture
def dataset(outputs) -> Path:
    """The session's tiny dataset (`outputs`), to read or copy: tests never change it in place."""
    return outputs / "data"
