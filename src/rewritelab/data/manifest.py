"""Manifest statistics: the disjointness checks, split summaries, the rule-frequency table, `dataset_stats`,
and a dataset as one made before validation splits (`without_validation`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from rewritelab.data.files import MANIFEST_CHECKSUM
from rewritelab.data.sampling import RuleSet
from rewritelab.data.tables import Dataset, Split
from rewritelab.layout import VALIDATION, split_file
from rewritelab.textfmt import format_table


def verify_disjoint(train: RuleSet, heldout: RuleSet) -> dict[str, int]:
    """Recheck what sampling guaranteed: no held-out pattern is a training pattern."""
    train_patterns, heldout_patterns = set(train.pattern), set(heldout.pattern)
    overlap = len(train_patterns & heldout_patterns)
    if overlap:
        raise RuntimeError(f"{overlap} held-out patterns are also training patterns (a generator bug)")
    return {
        "heldout_patterns_in_train": overlap,
        "heldout_rules": len(heldout.pattern),
        "heldout_patterns": len(heldout_patterns),
        "train_rules": len(train.pattern),
        "train_patterns": len(train_patterns),
    }


def verify_validation_disjoint(validation: RuleSet, train: RuleSet, heldout: RuleSet) -> dict[str, int]:
    """Recheck what sampling guaranteed: no validation pattern is a training or a held-out pattern, so the
    split a run is steered by shares no rule with what it learns or is finally scored on."""
    patterns = set(validation.pattern)
    result = {
        "validation_patterns_in_train": len(patterns & set(train.pattern)),
        "validation_patterns_in_heldout": len(patterns & set(heldout.pattern)),
        "validation_rules": len(validation.pattern),
        "validation_patterns": len(patterns),
    }
    overlap = {k: v for k, v in result.items() if k.endswith(("_in_train", "_in_heldout")) and v}
    if overlap:
        raise RuntimeError(f"validation patterns overlap other pools: {overlap} (a generator bug)")
    return result


def without_validation(ds: Dataset) -> Dataset:
    """`ds` as the same spec generated before validation splits existed: the other splits, rules and
    manifest entries are unchanged by one, so this is exactly that dataset (a run recorded then continues
    on the data it started with)."""
    if VALIDATION not in ds.splits:
        return ds
    keep = np.flatnonzero(np.asarray(ds.rules.split) != VALIDATION)
    return Dataset(
        spec=dataclasses.replace(ds.spec, validation_rules=0),
        splits={name: split for name, split in ds.splits.items() if name != VALIDATION},
        manifest=manifest_without_validation(ds.manifest),
        rules=ds.rules.subset(keep),
    )


def manifest_without_validation(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest less every entry its validation split added (spec fields, split, checks, streams)."""
    if not isinstance(manifest, dict):
        return manifest
    out = {k: v for k, v in manifest.items() if k != MANIFEST_CHECKSUM}  # it would no longer hold
    spec, splits, files = out.get("spec"), out.get("splits"), out.get("files")
    if isinstance(spec, dict):
        out["spec"] = {k: v for k, v in spec.items() if not k.startswith("validation_")}
    if isinstance(splits, dict):
        out["splits"] = {k: v for k, v in splits.items() if k != VALIDATION}
    if isinstance(files, dict):
        out["files"] = {k: v for k, v in files.items() if k != split_file(VALIDATION)}
    if isinstance(out.get("disjointness"), dict):
        out["disjointness"] = {k: v for k, v in out["disjointness"].items() if not k.startswith("validation")}
    if isinstance(out.get("seed_streams"), list):
        out["seed_streams"] = [s for s in out["seed_streams"] if not str(s).startswith("validation")]
    return out


def split_summary(split: Split) -> dict[str, int]:
    return {
        "examples": len(split),
        "rules": len(np.unique(split.rule_id)),
        "noops": int(split.noop.sum()),
    }


def frequency_table(counts: np.ndarray) -> dict[str, Any]:
    """Compact summary of training examples per rule: histogram, range, mean, concentration."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    ranked = np.sort(counts)[::-1]
    values, freq = np.unique(counts, return_counts=True)
    if len(values) <= 20:
        histogram, bins = (
            {str(v): int(f) for v, f in zip(values.tolist(), freq.tolist(), strict=True)},
            "exact",
        )
    else:
        histogram, bins = _log2_histogram(counts), "log2"
    return {
        "rules": len(counts),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "mean": round(float(counts.mean()), 6),
        "rules_without_examples": int((counts == 0).sum()),
        "top_1pct_share": _top_share(ranked, 0.01, total),
        "top_10pct_share": _top_share(ranked, 0.10, total),
        "gini": round(gini(counts), 6),
        "histogram": histogram,
        "histogram_bins": bins,
    }


def _top_share(ranked: np.ndarray, fraction: float, total: int) -> float:
    top = max(1, math.ceil(fraction * len(ranked)))
    return round(float(ranked[:top].sum()) / total, 6) if total else 0.0


def _log2_histogram(counts: np.ndarray) -> dict[str, int]:
    """Rules per count bin 0, 1, 2-3, 4-7, ... (keys in increasing order)."""
    bins = np.where(counts > 0, np.floor(np.log2(np.maximum(counts, 1))).astype(np.int64) + 1, 0)
    out = {}
    for b, f in zip(*np.unique(bins, return_counts=True), strict=True):
        lo, hi = (0, 0) if b == 0 else (2 ** (b - 1), 2**b - 1)
        out[str(lo) if lo == hi else f"{lo}-{hi}"] = int(f)
    return out


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of the counts: 0 when every rule has as many examples, → 1 when one has all."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def dataset_stats(ds: Dataset) -> str:
    """A short human-readable statistics table of a dataset."""
    if ds.spec.programs is not None:
        return _program_stats(ds)
    header = ("split", "examples", "rules", "no-ops", "input len", "pattern len", "occurrences")
    lines = [header]
    for name, split in ds.splits.items():
        in_len = np.fromiter(map(len, split.input), dtype=np.int64, count=len(split))
        p_len = np.fromiter(map(len, split.pattern), dtype=np.int64, count=len(split))
        lines.append(
            (
                name,
                str(len(split)),
                str(len(np.unique(split.rule_id))),
                f"{int(split.noop.sum())} ({split.noop.mean():.0%})" if len(split) else "0",
                _span(in_len),
                _span(p_len),
                _span(split.occurrences),
            )
        )
    table = _table(lines)
    freq = ds.manifest["rule_frequency"]
    spec = ds.spec
    dist = spec.rule_distribution + (
        f" (alpha={spec.alpha:g})" if spec.rule_distribution == "powerlaw" else ""
    )
    table += [
        f"family: {spec.family.describe()}; held out: {spec.heldout_family.describe()}; "
        f"alphabet: {len(spec.alphabet)} characters; seed {spec.seed}",
        f"training examples per rule ({dist}): min {freq['min']}, max {freq['max']}, mean {freq['mean']:g}; "
        f"top 1% of rules hold {freq['top_1pct_share']:.1%}, top 10% hold {freq['top_10pct_share']:.1%}",
        f"held-out patterns found in training: {ds.manifest['disjointness']['heldout_patterns_in_train']}"
        + _validation_overlap(ds.manifest["disjointness"], "patterns found in training or held out"),
    ]
    return "\n".join(table)


def _validation_overlap(disjointness: dict[str, int], found: str) -> str:
    """The stats line's validation part; empty for a dataset without a validation split."""
    counts = [v for k, v in disjointness.items() if k.startswith("validation_") and "_in_" in k]
    return f"; validation {found}: {sum(counts)}" if counts else ""


def _table(lines: list[tuple[str, ...]]) -> list[str]:
    return format_table(lines[0], lines[1:], rule=False).splitlines()


def _program_stats(ds: Dataset) -> str:
    lines = [("split", "examples", "programs", "k", "steps", "input len", "output len")]
    for name, split in ds.splits.items():
        lines.append(
            (
                name,
                str(len(split)),
                str(len(np.unique(split.rule_id))),
                _span(split.k),
                _span(split.steps),
                _span(np.fromiter(map(len, split.input), dtype=np.int64, count=len(split))),
                _span(np.fromiter(map(len, split.output), dtype=np.int64, count=len(split))),
            )
        )
    d, freq = ds.manifest["disjointness"], ds.manifest["rule_frequency"]
    return "\n".join(
        [
            *_table(lines),
            f"family: {ds.spec.family.describe()}; alphabet: {len(ds.spec.alphabet)} characters; "
            f"seed {ds.spec.seed}",
            f"training examples per program: min {freq['min']}, max {freq['max']}, mean {freq['mean']:g}",
            f"held-out programs found in training: {d['heldout_programs_in_train']}; strict programs' "
            f"patterns found in training: {d['strict_patterns_in_train']} (of {d['strict_patterns']})"
            + _validation_overlap(d, "programs found in other pools"),
        ]
    )


def _span(values: np.ndarray) -> str:
    if len(values) == 0:
        return "-"
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"
