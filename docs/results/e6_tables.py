"""The E6 tables of docs/results.md: a results.csv's seed table condensed to one row per condition, the
unseen rules read apart into applied rewrites and no-ops (the paper's "only the no-ops" regime),
`python docs/results/e6_tables.py docs/results/e6-cpu-v2/results.csv [LATER.csv ...]` (from the repository
root; each LATER export, e6-cpu-long's, replaces the conditions it re-ran, as `rewritelab results
--supersede` does); the long-tail arm (`…/e6-cpu-longtail/results.csv`) and the zero-shot runs read the
same way."""

import sys

from rewritelab.report import seed_cells


def per_seed(split: dict[str, list[str]], name: str) -> str:
    return split.get(name, [""] * 4)[3] or "-"


def main(source: str, *later: str) -> None:
    rows = seed_cells(source, later)
    print(
        "| condition | steps | unseen (per seed) | mean | across seeds [95 % t] | unseen applied (per seed) |"
        " unseen no-op (per seed) | seen (per seed) | seen applied (per seed) | distinct patterns (min) |"
        " converged |"
    )
    print("|---|---:|---|---:|---|---|---|---|---|---:|---|")
    for condition, split in rows.items():
        unseen, seen = split["test_unseen"], split["test_seen"]
        print(
            f"| {condition} | {' / '.join(split['steps'])} | {unseen[3]} | **{unseen[4]}** | {unseen[5]} |"
            f" {per_seed(split, 'test_unseen (applied)')} | {per_seed(split, 'test_unseen (no-op)')} |"
            f" {seen[3]} | {per_seed(split, 'test_seen (applied)')} | {unseen[7]} | {unseen[8]} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
