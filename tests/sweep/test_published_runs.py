"""The presets that publish results, checked against the committed evidence in docs/results/.

The convergence rule of docs/results.md (a condition with an unconverged run is trained again, both seeds,
for twice as long) and issue 27's acceptance (every published E4 and E6 run converged, >= 2 seeds a
condition) are claims about committed files; these tests re-derive them from those files, no training.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from rewritelab.convergence import run_convergence
from rewritelab.kinds import build_run_config
from rewritelab.run import count_steps
from rewritelab.sweep import expand, load_sweep, rerun_sweep

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def without(mapping: dict, *keys: str) -> dict:
    """`mapping` less `keys`: what a run and the run it re-trains must share once the changed settings go."""
    return {k: v for k, v in mapping.items() if k not in keys}


def trained_steps(config: dict) -> int:
    cfg = build_run_config(config)
    return count_steps(cfg.data.budget, cfg.train)


@pytest.mark.parametrize(
    ("name", "parent", "length"),
    [("e4-cpu-long", "e4-cpu", "max_steps"), ("e4-cpu-longer", "e4-cpu-long", "max_steps"),
     ("e4-cpu-longest", "e4-cpu-longer", "max_steps"), ("e4-cpu-48k", "e4-cpu-longest", "max_steps"),
     ("e4-cpu-mirrored-24k", "e4-cpu-mirrored-12k", "max_steps"), ("e6-cpu-long", "e6-cpu", "epochs"),
     ("e6-cpu-longtail-long", "e6-cpu-longtail", "epochs"),
     ("e6-cpu-longtail-longer", "e6-cpu-longtail-long", "epochs")],
)  # fmt: skip
def test_the_convergence_rule_re_runs_whole_conditions_for_twice_the_training(name, parent, length):
    """A `-long` preset re-trains conditions of its parent, both seeds, at twice the steps or epochs and
    nothing else changed (its runs supersede the parent's: `rewritelab results --supersede`)."""

    def condition(config: dict) -> str:
        return json.dumps(without(config["data"], "seed"), sort_keys=True)

    before = {(condition(r.config), r.seed): r.config for r in expand(load_sweep(parent))}
    conditions: dict[str, set[int]] = {}
    for run in expand(load_sweep(name)):
        data = condition(run.config)
        old = before[(data, run.seed)]
        conditions.setdefault(data, set()).add(run.seed)
        assert run.config["train"][length] == 2 * old["train"][length]
        assert trained_steps(run.config) == 2 * trained_steps(old)  # whichever of epochs and max_steps binds
        strip = ("max_steps", "epochs", "eval_every")
        assert without(run.config["train"], *strip) == without(old["train"], *strip)
        assert without(run.config, "train") == without(old, "train")
    assert all(seeds == {0, 1} for seeds in conditions.values())


@pytest.mark.parametrize(
    ("export", "name"),
    [("e4-cpu-v3", "e4-cpu-long"), ("e4-cpu-v3-long", "e4-cpu-longer"),
     ("e4-cpu-v3-longer", "e4-cpu-longest"), ("e4-cpu-v3-longest", "e4-cpu-48k"),
     ("e4-cpu-v3-mirrored-12k", "e4-cpu-mirrored-24k"), ("e6-cpu-v2", "e6-cpu-long"),
     ("e6-cpu-longtail-long", "e6-cpu-longtail-longer")],
)  # fmt: skip
def test_each_re_run_preset_is_what_converged_rerun_writes_from_the_committed_export(export, name, tmp_path):
    """The published re-runs follow the convergence rule from the published evidence: `converged --rerun`
    on the export (its sweep.yaml and runs' summaries) writes the preset's runs, step for step.
    (e6-cpu-longtail-long came from the long-tail sweep merged with e6-cpu-long's, not from one export.)"""

    def runs_of(sweep) -> dict[str, tuple]:
        return {
            r.run_id: (
                without(r.config, "train"),
                without(r.config["train"], "epochs", "max_steps", "threads"),
                trained_steps(r.config),
            )
            for r in expand(sweep)
        }

    text, _ = rerun_sweep(RESULTS / export)
    (tmp_path / "rerun.yaml").write_text(text)
    assert runs_of(load_sweep(str(tmp_path / "rerun.yaml"))) == runs_of(load_sweep(name))


def test_e4_extras_change_only_the_training_family_of_e4_cpu_at_one_i():
    """The pair and the narrow k range are read against e4-cpu's mixture: same test rules, recipe, seeds."""
    base = next(r.config for r in expand(load_sweep("e4-cpu")) if r.params["data.num_rules"] == 5000)
    families = []
    for run in expand(load_sweep("e4-cpu-extra")):
        assert without(run.config["data"], "family", "seed") == without(base["data"], "family", "seed")
        assert without(run.config["train"], "seed") == without(base["train"], "seed")
        assert run.seed in (0, 1)
        families.append(run.config["data"]["family"])
    parts = [{(c["name"], tuple(c["k"])) for c in f["components"]} for f in families[:2]]
    assert parts == [
        {("repeated", (3, 12)), ("periodic", (3, 12))},
        {(n, (3, 4)) for n in ("repeated", "periodic", "mirrored")},
    ]


def test_e4_mirrored_check_changes_only_the_steps_of_e4_cpus_mirrored_runs_at_large_i():
    """The check beyond the rule is read against e4-cpu's runs: same data, recipe and seeds, only longer."""
    base = {
        (r.params["data.num_rules"], r.seed): r.config
        for r in expand(load_sweep("e4-cpu"))
        if r.config["data"]["family"]["name"] == "mirrored"
    }
    runs = list(expand(load_sweep("e4-cpu-mirrored-12k")))
    assert sorted((r.params["data.num_rules"], r.seed) for r in runs) == [
        (i, s) for i in (5000, 10000) for s in (0, 1)
    ]
    for run in runs:
        old = base[(run.params["data.num_rules"], run.seed)]
        assert run.config["data"] == old["data"]
        assert trained_steps(run.config) == 12000
        strip = ("max_steps", "eval_every")
        assert without(run.config["train"], *strip) == without(old["train"], *strip)


@pytest.mark.parametrize(
    "composed", ["e4-cpu-v3-final", "e4-cpu-v3-extra", "e6-cpu-v2-final", "e6-cpu-longtail-final"]
)
def test_every_published_e4_and_e6_run_converged_by_its_committed_metrics(composed):
    """Each row of a published set is a committed run, at its steps, that the criterion judges converged
    from its own metrics.jsonl (not only the `converged` column), with >= 2 seeds per condition."""
    judged = {}
    for summary in RESULTS.glob("e[46]-*/runs/*/summary.json"):
        run, steps = summary.parent, json.loads(summary.read_text())["train"]["steps"]
        judged.setdefault((run.name, steps), []).append((run_convergence(run) or {}).get("converged"))
    rows = list(csv.DictReader((RESULTS / composed / "results.csv").open()))
    seeds: dict[str, set[str]] = {}
    for row in rows:
        assert row["converged"] == "1", row["run_id"]
        verdicts = judged[(row["run_id"], int(row["steps"]))]  # KeyError: no committed run at these steps
        assert all(verdicts), row["run_id"]
        seeds.setdefault(re.sub(r"\.?seed=\d+", "", row["run_id"]), set()).add(row["seed"])
    assert rows and all(len(s) >= 2 for s in seeds.values())
