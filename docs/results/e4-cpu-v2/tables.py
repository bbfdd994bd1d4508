"""The E4 table of docs/results.md, the seed table of this directory's results.csv condensed to one row per
family and I:
`python docs/results/e4-cpu-v2/tables.py` (run from the repository root)."""

import re
from pathlib import Path

from rewritelab.report import load_runs, seed_rows
from rewritelab.store import load_results

HERE = Path(__file__).parent
FAMILIES = ["repeated", "periodic", "mirrored", "mixed"]
LENGTHS = ["6", "7", "8", "9"]


def main() -> None:
    rows: dict[str, dict[str, list[str]]] = {}
    for cells in seed_rows(*load_runs(load_results(HERE / "results.csv"))):
        rows.setdefault(cells[0], {})[cells[1]] = cells

    def order(condition: str) -> tuple[int, int]:
        num_rules, family = re.match(r"I = (\d+), (\w+)", condition).groups()
        return FAMILIES.index(family), int(num_rules)

    print(
        "| family | I | unconstrained rules (per seed) | mean | across seeds [95 % t] |"
        " by test pattern length 6 / 7 / 8 / 9 (mean) | seen (per seed) | seen mean |"
        " distinct patterns (min) | converged |"
    )
    print("|---|---:|---|---:|---|---|---|---:|---:|---|")
    for condition in sorted(rows, key=order):
        split = rows[condition]
        unseen, seen = split["test_unseen"], split["test_seen"]
        by_length = " / ".join(
            split.get(f"test_unseen (pattern length {n})", [""] * 5)[4] or "-" for n in LENGTHS
        )
        print(
            f"| {condition.split(', ', 1)[1]} | {order(condition)[1]} | {unseen[3]} | **{unseen[4]}** |"
            f" {unseen[5]} | {by_length} | {seen[3]} | {seen[4]} | {unseen[7]} | {unseen[8]} |"
        )


if __name__ == "__main__":
    main()
