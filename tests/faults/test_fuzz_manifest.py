"""Random bit flips in a dataset (issue 38, fuzz): every flip of its manifest.json or of a split file is
either refused in one line (a `UserError`) or read back as exactly the dataset that was written. No other
exception, and never a dataset whose content silently changed."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from rewritelab.data import load_dataset
from rewritelab.errors import UserError

FLIPS = 120  # per file in the default suite: each read takes milliseconds
SLOW_FLIPS = 2_000


def content(data_dir: Path) -> dict:
    """What a run reads of a dataset: its spec, manifest, every split's columns and the rule table."""
    ds = load_dataset(data_dir)
    return {
        "spec": ds.spec,
        "manifest": ds.manifest,
        "splits": {name: split.to_lists() for name, split in ds.splits.items()},
        "rules": ds.rules.to_lists(),
    }


def fuzz(dataset: Path, tmp_path: Path, name: str, flips: int, seed: int) -> dict[str, int]:
    """Flip `flips` random single bits of `name` (one at a time, in a fresh copy); count the outcomes."""
    expected = content(dataset)
    original = (dataset / name).read_bytes()
    rng = random.Random(seed)
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    outcomes = {"refused": 0, "identical": 0}
    for _ in range(flips):
        bit = rng.randrange(len(original) * 8)
        damaged = bytearray(original)
        damaged[bit // 8] ^= 1 << (bit % 8)
        (copy / name).write_bytes(bytes(damaged))
        try:
            got = content(copy)
        except UserError as e:
            assert "\n" not in str(e), f"bit {bit}: a refusal of more than one line: {e}"
            outcomes["refused"] += 1
            continue
        assert got == expected, f"bit {bit} of {name} changed the dataset without a word"
        outcomes["identical"] += 1
    return outcomes


@pytest.mark.parametrize("name", ["manifest.json", "train.jsonl", "test_unseen.jsonl", "rules.jsonl"])
def test_a_flipped_bit_is_refused_or_changes_nothing(dataset, tmp_path, name):
    outcomes = fuzz(dataset, tmp_path, name, FLIPS, seed=38)
    assert outcomes["refused"] > 0  # the fuzzer reached the checks: not every flip landed in slack


@pytest.mark.slow
@pytest.mark.parametrize("name", ["manifest.json", "train.jsonl"])
def test_many_flipped_bits_are_refused_or_change_nothing(dataset, tmp_path, name):
    fuzz(dataset, tmp_path, name, SLOW_FLIPS, seed=3800)
