"""The E4 tables of docs/results.md: a results.csv's seed table condensed to one row per training family
and I, `python docs/results/e4_tables.py docs/results/e4-cpu-v3/results.csv [LATER.csv ...]` (from the
repository root; each LATER export, e4-cpu-long's, replaces the conditions it re-ran, as `rewritelab results
--supersede` does). A source with one I (e4-cpu-extra's) labels its conditions by family alone, one with
one family (e4-cpu-mirrored-12k's) by I alone; the other is then read from its rows.

v3 (the paper's construction) reads the held-out rules apart — k = 1 (unconstrained patterns) and k = 2
of each family, all of the training length; v2 (`…/e4-cpu-v2/results.csv`) reads the unconstrained test
rules by pattern length, since half of them had a length no training pattern has."""

import csv
import re
import sys

from rewritelab.report import seed_cells

FAMILIES = ["repeated", "periodic", "mirrored", "mixed"]
K2 = ["repeated", "periodic", "mirrored"]
LENGTHS = ["6", "7", "8", "9"]


def parse(condition: str, one_i: str, one_family: str) -> tuple[str, str]:
    """The label's family and I: "I = 500, mirrored[k=3-12]", or with one I in the source "mirrored[…]",
    with one family "I = 500"."""
    num_rules, family = re.fullmatch(r"(?:I = (\d+)(?:, |$))?(.*)", condition).groups()
    return family or one_family, num_rules or one_i


def order(label: tuple[str, str]) -> tuple[int, str, int]:
    family, num_rules = label
    return FAMILIES.index(re.match(r"\w+", family).group()), family, int(num_rules)


def mean_of(split: dict[str, list[str]], name: str) -> str:
    return split.get(name, [""] * 5)[4] or "-"


def main(source: str, *later: str) -> None:
    rows = seed_cells(source, later)
    with open(source, newline="") as f:
        table = list(csv.DictReader(f))
    sizes, families = {row["num_rules"] for row in table}, {row["family"] for row in table}
    one_i = sizes.pop() if len(sizes) == 1 else ""
    one_family = families.pop() if len(families) == 1 else ""
    by_length = any("pattern length" in s for split in rows.values() for s in split)
    if by_length:
        print(
            "| family | I | unconstrained rules (per seed) | mean | across seeds [95 % t] |"
            " by test pattern length 6 / 7 / 8 / 9 (mean) | seen (per seed) | seen mean |"
            " distinct patterns (min) | converged |"
        )
        print("|---|---:|---|---:|---|---|---|---:|---:|---|")
    else:
        print(
            "| family | I | steps | unseen, all (per seed) | mean | across seeds [95 % t] |"
            " k = 1 (per seed) | k = 2 repeated / periodic / mirrored (mean) | seen (per seed) |"
            " distinct patterns (min) | converged |"
        )
        print("|---|---:|---:|---|---:|---|---|---|---|---:|---|")
    for condition in sorted(rows, key=lambda c: order(parse(c, one_i, one_family))):
        split = rows[condition]
        unseen, seen = split["test_unseen"], split["test_seen"]
        family, num_rules = parse(condition, one_i, one_family)
        tail = f"{unseen[3]} | **{unseen[4]}** | {unseen[5]} |"
        if by_length:
            head = f"| {family} | {num_rules} | {tail}"
            lengths = " / ".join(mean_of(split, f"test_unseen (pattern length {n})") for n in LENGTHS)
            print(f"{head} {lengths} | {seen[3]} | {seen[4]} | {unseen[7]} | {unseen[8]} |")
        else:
            head = f"| {family} | {num_rules} | {' / '.join(split['steps'])} | {tail}"
            k1 = split.get("test_unseen (unconstrained rules)", [""] * 4)[3] or "-"
            k2 = " / ".join(mean_of(split, f"test_unseen ({f} rules)") for f in K2)
            print(f"{head} {k1} | {k2} | {seen[3]} | {unseen[7]} | {unseen[8]} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
