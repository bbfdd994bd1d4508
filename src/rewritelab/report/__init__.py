"""The report of a sweep: the paper's figures (PNG + SVG), one self-contained `report.html`, and the
summary table and sentences of `rewritelab reproduce`.

`runs` turns results rows into runs with their conditions and statistics over seeds; `style` sets the
look of every figure; `figures`, `families` (E4), `programs` (Markov-program sweeps), `factors` (any
other varied config field) and `curves` (learning and loss curves) draw; `headline` states the
measured contrast with its uncertainty; `sections` (configuration, convergence, execution) and
`breakdowns` (breakdown tables, example errors) write the text of the page; `tables` formats tables,
`seeds` tabulates the spread over seeds, and `html` builds the report directory.
"""

from rewritelab.report.curves import read_curves
from rewritelab.report.factors import varied_factors
from rewritelab.report.families import figure_family, figure_heldout, held_out_kinds
from rewritelab.report.figures import cell_point, figure_alpha, figure_noop, figure_rules
from rewritelab.report.headline import headline, headline_of
from rewritelab.report.html import build_report, run_folders
from rewritelab.report.programs import figure_k, figure_steps
from rewritelab.report.runs import Context, aggregate, load_runs, t_quantile, varying, wilson
from rewritelab.report.seeds import seed_cells, seed_rows, seed_table
from rewritelab.report.tables import (
    RunRow,
    occurrence_tables,
    reproduce_rows,
    reproduce_table,
)

__all__ = [
    "Context",
    "RunRow",
    "aggregate",
    "build_report",
    "cell_point",
    "figure_alpha",
    "figure_family",
    "figure_heldout",
    "figure_k",
    "figure_noop",
    "figure_rules",
    "figure_steps",
    "headline",
    "headline_of",
    "held_out_kinds",
    "reproduce_table",
    "load_runs",
    "occurrence_tables",
    "read_curves",
    "reproduce_rows",
    "run_folders",
    "seed_cells",
    "seed_rows",
    "seed_table",
    "t_quantile",
    "varied_factors",
    "varying",
    "wilson",
]
