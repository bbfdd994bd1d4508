"""Runs of a results frame: their conditions, labels and order, grouping, and the statistics over seeds.

A run is defined by its conditions (number of rules I, S or budget, rule distribution, no-op share,
family, occurrences; for Markov programs also k and the answer format; and a `variant` for its factors,
the other config values that differ between runs) and its seed;
seeds are averaged with a 95 % band (Student t across seeds, else the run's own bootstrap CI).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewritelab.store import config_leaves, factors

# Two-sided 97.5 % Student t quantiles for 1..30 degrees of freedom (CIs across a few seeds).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)  # fmt: skip
Z975 = 1.959964


# ---------------------------------------------------------------------------------------------------------
# Runs and conditions


@dataclass
class Run:
    """One run: the conditions that define it (without the seed), its accuracy per split, breakdowns."""

    run_id: str
    seed: int | None
    cond: dict[str, Any]
    patterns: int | None = None  # distinct training patterns, when the run's data manifest was recorded
    converged: bool | None = None  # by `rewritelab.convergence`, when the run was judged
    loss_drop: float | None = None  # the convergence measures behind `converged`
    acc_delta: float | None = None
    steps: int | None = None
    tokens: int | None = None
    seconds: float | None = None  # training time (learning-curve evaluations included)
    config: dict[str, str] = field(default_factory=dict)  # the resolved config (`store.config_leaves`)
    accuracy: dict[str, tuple[float, float | None, float | None]] = field(default_factory=dict)
    breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)


# Conditions a sweep can vary, in legend order; `scale` is S or the budget (see `_scale_column`).
CONDITIONS = ("num_rules", "scale", "dist", "noop_frac", "family", "occurrences", "k", "answer", "variant")
NUMERIC = {"num_rules", "scale", "noop_frac", "alpha"}


def load_runs(frame) -> tuple[list[Run], str]:
    """Results rows → one `Run` per run id, and the name of the scale condition (`S` or `budget`)."""
    scale = _scale_column(frame)
    runs: dict[str, Run] = {}
    for row in frame.to_dict("records"):
        run = runs.get(row["run_id"])
        if run is None:
            run = runs[row["run_id"]] = Run(row["run_id"], _value(row["seed"]), _conditions(row, scale))
            run.patterns = _value(row["train_patterns"])
            converged = _value(row["converged"])
            run.converged = None if converged is None else bool(converged)
            run.loss_drop, run.acc_delta = _value(row["loss_drop"]), _value(row["acc_delta"])
            run.steps, run.tokens, run.seconds = (_value(row[c]) for c in ("steps", "tokens", "seconds"))
            run.config = config_leaves(_json(row["config_json"]))
        low, high = _value(row["ci_low"]), _value(row["ci_high"])
        run.accuracy[row["split"]] = (float(row["accuracy"]), low, high)
        run.breakdown[row["split"]] = _json(row["breakdown_json"])
    _set_variants(list(runs.values()))
    return list(runs.values()), "S" if scale == "examples_per_rule" else "budget"


def _scale_column(frame) -> str:
    """S or the budget, whichever takes fewer values: a fixed-budget sweep has S = budget / I varying
    with I, so its curves are labelled by the budget; a sweep over S at each I is labelled by S."""
    distinct = {c: frame[c].nunique(dropna=False) for c in ("examples_per_rule", "budget")}
    return "budget" if distinct["budget"] < distinct["examples_per_rule"] else "examples_per_rule"


def _conditions(row: dict[str, Any], scale: str) -> dict[str, Any]:
    distribution = _value(row["rule_distribution"]) or "uniform"
    alpha = _value(row["alpha"])
    return {
        "num_rules": _value(row["num_rules"]),
        "scale": _value(row[scale]),
        "dist": f"α = {alpha:g}" if distribution == "powerlaw" and alpha is not None else distribution,
        "alpha": alpha if distribution == "powerlaw" else None,
        "noop_frac": _value(row["noop_frac"]),
        "family": _value(row["family"]),
        "occurrences": _value(row["occurrences"]),
        "k": _k_value(_value(row["program_k"])),
        "answer": _value(row["answer"]),
        "variant": None,
    }


def _k_value(label: Any) -> Any:
    """Rules per program: `2` → 2 (a number, for axes), a range such as `1-3` stays text."""
    return int(label) if isinstance(label, str) and label.isdigit() else label


def _set_variants(runs: list[Run]) -> None:
    """Label each run by its factors (`store.factors`: the config values outside the known conditions
    that differ between runs, the results' factor columns) that take two values within one condition, so
    runs of another learning rate or model size are never averaged together as if they were seeds. A
    factor with one value per condition adds no arm and labels nothing: a training length set per
    condition by a convergence rule (results composed from a sweep and its longer re-runs) keeps each
    family's or I's runs on one line."""
    differing = condition_splitting(runs)
    if not differing:
        return
    for run in runs:
        run.cond["variant"] = ", ".join(f"{p}={run.config.get(p, '-')}" for p in differing)


def condition_splitting(runs: Sequence[Run]) -> list[str]:
    """The factors (`store.factors`) that take two values among the runs of one condition: the arms a
    report tells apart. One set once per condition (a training length a convergence rule chose for it)
    is none."""
    groups: dict[tuple[Any, ...], list[dict[str, str]]] = {}
    for run in runs:
        groups.setdefault(tuple(v for k, v in run.cond.items() if k != "variant"), []).append(run.config)
    return [
        p
        for p in factors(r.config for r in runs)
        if any(len({c.get(p) for c in group}) > 1 for group in groups.values())
    ]


def _value(x: Any) -> Any:
    """NaN → None, numpy scalars → Python numbers (integral floats become ints)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return int(x)
    return x


def _json(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def varying(runs: Sequence[Run]) -> list[str]:
    """The conditions that take more than one value across the runs."""
    return [c for c in CONDITIONS if len({r.cond[c] for r in runs}) > 1]


def label(cond: str, value: Any, scale_name: str = "S", symbol: str = "I") -> str:
    """A condition's value as a legend entry; `symbol` names the instructions (I rules, P programs)."""
    if value is None:
        return f"{cond} -"
    if cond == "num_rules":
        return f"{symbol} = {value:g}"
    if cond == "k":
        return f"k = {value}"
    if cond == "answer":
        return f"{value} answers"
    if cond == "scale":
        return f"{scale_name} = {value:g}"
    if cond == "noop_frac":
        return f"no-op {100 * value:g}%"
    if cond == "occurrences":
        return f"occurrences {value}"
    return str(value)


def order(cond: str, value: Any) -> tuple[Any, ...]:
    """Sort key within a condition: numbers numerically, uniform after every α, mixtures last."""
    if value is None:
        return (2,)
    if cond in NUMERIC:
        return (0, float(value))
    if cond == "dist":  # "α = 0.5" by α, then "uniform" (or another named distribution)
        return (0, float(value.split("=")[-1]), "") if value.startswith("α") else (1, 0.0, str(value))
    if cond == "family":
        return (int(str(value).startswith("mixed")), str(value))
    if cond == "k":
        return (0, int(str(value).split("-")[0]), str(value))
    if cond == "occurrences":
        counts = [int(c) if c.strip().isdigit() else 0 for c in str(value).split(" (")[0].split(",")]
        return (int(len(counts) > 1), counts, str(value))
    return (0, str(value))


def group(runs: Iterable[Run], conds: Sequence[str]) -> list[tuple[tuple[Any, ...], list[Run]]]:
    """Runs grouped by the values of `conds`, groups in `order`."""
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.cond[c] for c in conds), []).append(run)
    return sorted(groups.items(), key=lambda kv: [order(c, v) for c, v in zip(conds, kv[0], strict=True)])


def key_label(conds: Sequence[str], key: tuple[Any, ...], scale_name: str, symbol: str = "I") -> str:
    """A group's legend entry: its conditions' labels, comma-separated (`all runs` when none varies)."""
    return ", ".join(label(c, v, scale_name, symbol) for c, v in zip(conds, key, strict=True)) or "all runs"


@dataclass
class Context:
    """What the figures and tables of a report see: the runs, what varies, the scale name, the curves."""

    runs: list[Run]
    varying: list[str]
    scale_name: str
    curves: dict[str, list[dict[str, Any]]]  # run id → eval lines of metrics.jsonl
    losses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run id → its train lines

    @property
    def programs(self) -> list[Run]:
        """The runs whose instructions are Markov programs (they have an answer format)."""
        return [r for r in self.runs if r.cond["answer"] is not None]

    @property
    def symbol(self) -> str:
        """What the number of instructions is called: P (programs) when every run is a program run."""
        return "P" if self.runs and len(self.programs) == len(self.runs) else "I"


# ---------------------------------------------------------------------------------------------------------
# Statistics


def t_quantile(df: int) -> float:
    """0.975 quantile of Student's t (table to 30 d.o.f., then the Cornish-Fisher expansion)."""
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def aggregate(points: Sequence[tuple[float, float | None, float | None]]) -> tuple[float, float, float]:
    """Mean over seeds with a 95 % band: Student t across seeds when ≥ 2, else the run's own CI."""
    values = [p[0] for p in points]
    mean = sum(values) / len(values)
    if len(values) >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        half = t_quantile(len(values) - 1) * sd / math.sqrt(len(values))
        return mean, max(0.0, mean - half), min(1.0, mean + half)
    _, low, high = points[0]
    return mean, mean if low is None else low, mean if high is None else high


def wilson(accuracy: float, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion (for breakdown cells recorded without a CI of their own)."""
    if n <= 0:
        return accuracy, accuracy
    z2 = Z975**2
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def split_points(runs: Iterable[Run], split: str) -> list[tuple[float, float | None, float | None]]:
    """(accuracy, CI low, CI high) of each run that scored `split`, for `aggregate`."""
    return [r.accuracy[split] for r in runs if split in r.accuracy]
