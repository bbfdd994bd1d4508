"""The experimental columns of a results row, derived from a resolved run config: I, S, budget, α,
no-op share, and short labels for the family, the occurrences and (Markov programs) k and the answer;
and the factor columns, one per other config value that differs between a sweep's runs (`factors`).

A factor column is named by its config path (`train.weight_decay`, `model.n_layer`, `lm.task.kind`) and
derived from the runs' resolved configs when results are loaded, so a sweep over a knob the store has
never seen gets its column from the preset alone — in databases and CSV exports written before it too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rewritelab.errors import UserError

# Config paths an experimental column (or the seed) already holds; any other path whose value differs
# between runs is a factor of its own. Of a Markov program family only the pattern family, k and the answer
# format have columns, so runs that differ in its steps or caps get factor columns for those.
COVERED = ("data.num_rules", "data.examples_per_rule", "data.budget", "data.alpha", "data.rule_distribution",
           "data.noop_frac", "data.family", "data.occurrences", "data.seed", "train.seed")  # fmt: skip
PROGRAM_COVERED = ("data.family.name", "data.family.patterns", "data.family.k", "data.family.answer")


def experiment_columns(config: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """The experimental columns of a resolved run config (the `data` section and the seed)."""
    data = config.get("data")
    if not isinstance(data, dict):
        raise UserError(f"{where}: config.data: missing; the summary must hold the resolved run config")
    num_rules = data.get("num_rules")
    budget = data.get("budget")
    per_rule = data.get("examples_per_rule")
    if num_rules and per_rule is None and budget is not None:
        per_rule = budget / num_rules
    elif num_rules and budget is None and per_rule is not None:
        budget = int(round(per_rule * num_rules))
    distribution = data.get("rule_distribution", "uniform")
    family = data.get("family", "random")
    program = isinstance(family, dict) and family.get("name") == "program"
    return {
        "seed": data.get("seed", (config.get("train") or {}).get("seed")),
        "num_rules": num_rules,
        "examples_per_rule": None if per_rule is None else float(per_rule),
        "budget": budget,
        "alpha": data.get("alpha") if distribution == "powerlaw" else None,
        "rule_distribution": distribution,
        "noop_frac": data.get("noop_frac", 0.0),
        "family": family_label(family),
        "occurrences": occurrences_label(data.get("occurrences", 1)),
        "program_k": _range_label(family.get("k")) if program else None,
        "answer": family.get("answer", "final") if program else None,
    }


def family_label(family: Any) -> str:
    """A short label: `random`, `repeated[k=3-4]`, `mixed(repeated,periodic,mirrored)[k=3-4]`, and
    `program(random)` for Markov programs (their k has a column of its own)."""
    if isinstance(family, str):
        return family
    if not isinstance(family, dict):
        return str(family)
    name = str(family.get("name", "?"))
    if name == "program":
        return f"program({family_label(family.get('patterns', 'random'))})"
    components = family.get("components")
    if not components:
        return name + _k_suffix(family)
    suffixes = {_k_suffix(c) for c in components}
    if len(suffixes) == 1:  # every component has the same k range (or none): say it once
        return f"{name}({','.join(str(c.get('name', '?')) for c in components)}){suffixes.pop()}"
    return f"{name}({','.join(str(c.get('name', '?')) + _k_suffix(c) for c in components)})"


def _k_suffix(family: dict[str, Any]) -> str:
    k = family.get("k")
    if k is None or k == 0:
        return ""
    if isinstance(k, (list, tuple)):
        return f"[k={k[0]}-{k[-1]}]" if len(k) == 2 and k[0] != k[1] else f"[k={k[0]}]"
    return f"[k={k}]"


def _range_label(value: Any) -> str | None:
    """A range as written in a config → `2` or `1-3` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return str(value[0]) if len(value) == 1 or value[0] == value[-1] else f"{value[0]}-{value[-1]}"
    return str(value)


def occurrences_label(occurrences: Any) -> str:
    """`1`, `1,5,10,15,20`, or `1,10 (weights 3:1)` when the counts are not equally likely."""
    if isinstance(occurrences, dict):
        counts = occurrences.get("counts") or []
        weights = occurrences.get("weights")
        label = ",".join(str(c) for c in counts)
        if weights and len(set(weights)) > 1:
            label += f" (weights {':'.join(f'{w:g}' for w in weights)})"
        return label
    if isinstance(occurrences, (list, tuple)):
        return ",".join(str(c) for c in occurrences)
    return str(occurrences)


# ---------------------------------------------------------------------------------------------------------
# Factors: the config values outside the columns above that differ between runs


def config_leaves(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → {"train.lr": "0.001", ...}: every leaf as JSON text, comparable and printable."""
    out: dict[str, str] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(config_leaves(value, f"{path}."))
        else:
            out[path] = json.dumps(value, sort_keys=True)
    return out


def covered(path: str, leaves: dict[str, str]) -> bool:
    """Whether an experimental column holds `path` of a run config (given as its `config_leaves`)."""
    program = leaves.get("data.family.name") == '"program"'
    paths = [c for c in COVERED if c != "data.family"] + list(PROGRAM_COVERED) if program else COVERED
    return any(path == c or path.startswith(c + ".") for c in paths)


# The columns that name a run's condition: its experimental columns and seed (train_patterns, a count the
# data yields, aside).
CONDITION_COLUMNS = ("seed", "num_rules", "examples_per_rule", "budget", "alpha", "rule_distribution",
                     "noop_frac", "family", "occurrences", "program_k", "answer")  # fmt: skip


def superseded(frames: Sequence[Any], names: Sequence[str]) -> Any:
    """Results rows of several sources → one frame holding, for each condition and seed of the first, the
    rows of the last source that has it: a sweep and the sweeps that re-ran some of its conditions
    (trained longer by a convergence rule) read as one set of results. A condition is matched by its
    columns, not its run id, so a re-run from another preset replaces it too; a later source's other
    conditions are not the first's results and are left out. Each row keeps its own config and steps."""
    import pandas as pd

    def conditions(frame: Any) -> list[tuple[Any, ...]]:
        rows = frame[list(CONDITION_COLUMNS)].itertuples(index=False)
        return [
            tuple(None if pd.isna(v) else v if isinstance(v, str) else float(v) for v in row) for row in rows
        ]

    keys = [conditions(frame) for frame in frames]
    newest = {key: 0 for key in keys[0]}
    for index, frame_keys in enumerate(keys[1:], start=1):
        newest.update((key, index) for key in frame_keys if key in newest)
    kept = [frame[[newest.get(k) == index for k in keys[index]]] for index, frame in enumerate(frames)]
    owner: dict[str, int] = {}
    for index, frame in enumerate(kept):
        for run_id in dict.fromkeys(frame["run_id"]):
            if owner.setdefault(run_id, index) != index:
                raise UserError(
                    f"run {run_id} is in {names[owner[run_id]]} and in {names[index]} with another "
                    "condition; superseding matches runs by condition and seed, so one id cannot name two"
                )
    return pd.concat(kept, ignore_index=True)


def factors(configs: Iterable[dict[str, str]]) -> list[str]:
    """The config paths (sorted) outside the experimental columns whose value differs between the runs
    (`config_leaves` of each; a path one run lacks differs from any value)."""
    configs = list(configs)
    paths = sorted({p for c in configs for p in c if not covered(p, c)})
    return [p for p in paths if len({c.get(p) for c in configs}) > 1]


def add_factor_columns(frame, after: str):
    """`frame` (results rows) with a column per factor, named by its config path, after the column `after`
    (from the rows' config_json, so a CSV export and its database give the same columns)."""
    import pandas as pd

    leaves = [config_leaves(_config(text)) for text in frame["config_json"]]
    at = frame.columns.get_loc(after) + 1
    for offset, name in enumerate(factors(leaves)):
        values, kind = factor_values([leaf.get(name) for leaf in leaves])
        if kind != "number":
            column = pd.Series(values, dtype="object")
        elif all(isinstance(v, int) for v in values):
            column = pd.Series(values, dtype="int64")
        else:
            column = pd.Series([float("nan") if v is None else v for v in values], dtype="float64")
        frame.insert(at + offset, name, column)
    return frame


def _config(text: Any) -> dict[str, Any]:
    try:
        config = json.loads(text) if isinstance(text, str) else {}
    except json.JSONDecodeError:
        return {}
    return config if isinstance(config, dict) else {}


def factor_values(leaves: Sequence[str | None]) -> tuple[list[Any], str]:
    """A factor column's cells from its JSON leaves (None where a run lacks it), and its kind: `number`
    (ints and floats), `text` (strings), else `json` (each value as compact JSON text)."""
    values = [None if leaf is None else json.loads(leaf) for leaf in leaves]
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return values, "number"
    if all(isinstance(v, str) for v in present):
        return values, "text"
    text = [None if v is None else json.dumps(v, sort_keys=True, separators=(",", ":")) for v in values]
    return text, "json"
