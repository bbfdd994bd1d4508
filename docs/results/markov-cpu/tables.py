"""The tables of docs/results.md's Markov section, from this directory's results.csv:
`python docs/results/markov-cpu/tables.py` (pandas; run from the repository root)."""

import json
import sys
from pathlib import Path

import pandas as pd

from rewritelab.convergence import run_convergence

HERE = Path(__file__).parent
SPLITS = ["test_seen", "test_unseen", "test_unseen_strict", "test_ood_steps", "test_ood_length"]


def pct(x):
    return "–" if pd.isna(x) else f"{100 * x:.1f}"


def main() -> None:
    frame = pd.read_csv(HERE / "results.csv", dtype={"program_k": str})
    frame["k"] = frame["program_k"].astype(int)
    wide = frame.pivot_table(index=["answer", "num_rules", "k", "seed"], columns="split", values="accuracy")
    extra = frame[frame["split"] == "test_unseen"].set_index(["answer", "num_rules", "k", "seed"])
    out = sys.stdout
    out.write(
        "| answer | P | k | seed | seen | unseen | strict | OOD steps | OOD length | trace acc (unseen) |"
        " step acc (unseen) | converged |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    for (answer, p, k), block in wide.groupby(level=[0, 1, 2], sort=True):
        for key, row in block.iterrows():
            e = extra.loc[key]
            judged = run_convergence(HERE / "runs" / e["run_id"])  # the sweep's code predates the column
            conv = "–" if judged is None else ("yes" if judged["converged"] else "no")
            out.write(
                f"| {answer} | {p} | {k} | {key[3]} | "
                + " | ".join(pct(row.get(s)) for s in SPLITS)
                + f" | {pct(e['trace_accuracy'])} | {pct(e['step_accuracy'])} | {conv} |\n"
            )
        mean = block.mean()
        out.write(
            f"| {answer} | {p} | {k} | mean | " + " | ".join(pct(mean.get(s)) for s in SPLITS) + " | | | |\n"
        )
    out.write(
        "\nUnseen-program accuracy by number of execution steps (mean over seeds; 1-4 from test_unseen,"
        " 5-8 from test_ood_steps; n = examples per cell summed over seeds):\n\n"
    )
    cells = {}
    for r in frame[frame["split"].isin(["test_unseen", "test_ood_steps"])].itertuples():
        for steps, cell in json.loads(r.breakdown_json).get("steps", {}).items():
            key = (r.answer, r.num_rules, r.k)
            cells.setdefault(key, {}).setdefault(int(steps), []).append((cell["accuracy"], cell["n"]))
    columns = sorted({s for c in cells.values() for s in c})
    out.write(
        "| answer | P | k | "
        + " | ".join(f"{s} steps" for s in columns)
        + " |\n|---|---:|---:|"
        + "---:|" * len(columns)
        + "\n"
    )
    for key in sorted(cells):
        row = []
        for s in columns:
            got = cells[key].get(s, [])
            row.append(
                f"{pct(sum(a for a, _ in got) / len(got))} (n {sum(n for _, n in got)})" if got else "–"
            )
        out.write(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(row) + " |\n")


if __name__ == "__main__":
    main()
