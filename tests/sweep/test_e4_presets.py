"""E4's presets at the paper's construction (issue 27): every pattern has one length L, a training family
draws k from the divisors of L inside a range that starts at 3, and the held-out rules have k < 3 at the
same length (k = 1 unconstrained, k = 2 of each family), so only the structure changes between them.

No training here: a construction error must fail this test, not a sweep hours later."""

from __future__ import annotations

import pytest

from rewritelab.cli import main
from rewritelab.data.ranges import Context
from rewritelab.kinds import build_run_config
from rewritelab.sweep import expand, load_sweep

KINDS = {"repeated", "periodic", "mirrored"}


def members(family) -> list:
    """A mixture's component families, or the family itself."""
    return [c.family for c in family.components] if hasattr(family, "components") else [family]


@pytest.mark.parametrize(("name", "length"), [("e4-cpu", 12), ("e4-paper", 60)])
def test_e4_trains_one_pattern_length_and_holds_out_k_below_3_at_it(name, length):
    runs = expand(load_sweep(name))
    largest = max(r.params["data.num_rules"] for r in runs)
    assert largest >= 5000 and len({r.seed for r in runs}) >= 2
    for run in runs:
        data = build_run_config(run.config).data
        ctx = Context(len(data.alphabet), data.pattern_len)
        assert (data.pattern_len.lo, data.pattern_len.hi) == (length, length), run.run_id
        trained = members(data.family)
        assert {f.name for f in trained} <= KINDS
        for family in trained:
            assert family.pattern_len == length and family.k.lo == 3, run.run_id
            assert all(length % k == 0 for k in family.k_values())
            assert family.capacity(ctx) >= 20 * largest, run.run_id  # I counts distinct instructions
        held_out = members(data.test_family)
        assert sorted(f.name for f in held_out) == ["mirrored", "periodic", "random", "repeated"]
        for family in held_out:
            assert family.name == "random" or (family.pattern_len, family.k_values()) == (length, [2])


def test_e4_cpu_trains_each_family_alone_and_the_three_together():
    families = {build_run_config(r.config).data.family.describe() for r in expand(load_sweep("e4-cpu"))}
    singles = {f for f in families if not f.startswith("mixed")}
    assert {f.split("(")[0] for f in singles} == KINDS and len(families) == 4


def test_e4_paper_spans_the_papers_six_k_ranges_and_validates(tmp_path, capsys):
    runs = expand(load_sweep("e4-paper"))
    ranges: dict[int, set[str]] = {}
    for run in runs:
        family = members(build_run_config(run.config).data.family)
        names = {f.name for f in family}
        ranges.setdefault(family[0].k.hi, set()).add("mixed" if len(names) > 1 else names.pop())
    assert sorted(ranges) == [4, 6, 12, 20, 30, 60]
    assert all(kinds == KINDS | {"mixed"} for kinds in ranges.values())
    assert main(["sweep", "e4-paper", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "num_rules=10000" in capsys.readouterr().out and not (tmp_path / "o").exists()
