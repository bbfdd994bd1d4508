"""The E4 v3 table of docs/results.md, the seed table of this directory's results.csv condensed to one row
per family and I, with the held-out rules read apart: k = 1 (unconstrained patterns) and k = 2 of each
family, all of the training length:
`python docs/results/e4-cpu-v3/tables.py` (run from the repository root)."""

import re
from pathlib import Path

from rewritelab.report import load_runs, seed_rows
from rewritelab.store import load_results

HERE = Path(__file__).parent
FAMILIES = ["repeated", "periodic", "mirrored", "mixed"]
K2 = ["repeated", "periodic", "mirrored"]


def main() -> None:
    rows: dict[str, dict[str, list[str]]] = {}
    for cells in seed_rows(*load_runs(load_results(HERE / "results.csv"))):
        rows.setdefault(cells[0], {})[cells[1]] = cells

    def order(condition: str) -> tuple[int, int]:
        num_rules, family = re.match(r"I = (\d+), (\w+)", condition).groups()
        return FAMILIES.index(family), int(num_rules)

    print(
        "| family | I | unseen, all (per seed) | mean | across seeds [95 % t] | k = 1 (per seed) |"
        " k = 2 repeated / periodic / mirrored (mean) | seen (per seed) | distinct patterns (min) |"
        " converged |"
    )
    print("|---|---:|---|---:|---|---|---|---|---:|---|")
    for condition in sorted(rows, key=order):
        split = rows[condition]
        unseen, seen = split["test_unseen"], split["test_seen"]
        k1 = split.get("test_unseen (unconstrained rules)", [""] * 5)[3] or "-"
        k2 = " / ".join(split.get(f"test_unseen ({f} rules)", [""] * 5)[4] or "-" for f in K2)
        print(
            f"| {condition.split(', ', 1)[1]} | {order(condition)[1]} | {unseen[3]} | **{unseen[4]}** |"
            f" {unseen[5]} | {k1} | {k2} | {seen[3]} | {unseen[7]} | {unseen[8]} |"
        )


if __name__ == "__main__":
    main()
