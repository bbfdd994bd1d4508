"""Atomic writes: all or nothing, and the permissions a plain open()/mkdir() would give."""

from __future__ import annotations

import os
import stat

import pytest

from rewritelab.io import atomic_dir, atomic_write_json, atomic_write_text, read_json


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_dirs_get_default_permissions_not_mkstemp_ones(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("y")
    assert mode(tmp_path / "a.txt") == 0o644 and mode(tmp_path / "d") == 0o755


def test_json_is_canonical_and_replaces_atomically(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    first = path.read_bytes()
    atomic_write_json(path, {"a": [1, 2], "b": 1})
    assert path.read_bytes() == first and read_json(path) == {"a": [1, 2], "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_interrupted_directory_write_keeps_the_old_directory(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as d:
        (d / "train.jsonl").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as d:
        (d / "train.jsonl").write_text("half")
        raise KeyboardInterrupt
    assert (target / "train.jsonl").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
