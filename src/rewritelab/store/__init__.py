"""The results database of a sweep (`database`: one SQLite row per run × split; `loading`: as a frame), the
columns derived from a run config (`columns`: the experimental columns, and a factor column per other
config value a sweep varies), the check that refuses a damaged database (`integrity`) and the exports
(`export`: markdown, CSV, parquet and the readable table)."""

from rewritelab.store.columns import (
    config_leaves,
    experiment_columns,
    factors,
    family_label,
    occurrences_label,
)
from rewritelab.store.database import (
    ADDED_COLUMNS,
    BUSY_TIMEOUT_S,
    COLUMNS,
    open_db,
    record_run,
    summary_rows,
)
from rewritelab.store.export import (
    FORMATS,
    TABLE_HEADER,
    check_export_path,
    export,
    has_programs,
    markdown_table,
    per_rule,
    table_header,
    table_rows,
    text_columns,
)
from rewritelab.store.loading import (
    database_path,
    factor_names,
    load_results,
    natural_key,
    read_database,
)
from rewritelab.store.versions import varied_versions, versions_table

__all__ = [
    "read_database",
    "varied_versions",
    "versions_table",
    "ADDED_COLUMNS",
    "BUSY_TIMEOUT_S",
    "COLUMNS",
    "FORMATS",
    "TABLE_HEADER",
    "check_export_path",
    "config_leaves",
    "database_path",
    "experiment_columns",
    "export",
    "factor_names",
    "factors",
    "family_label",
    "has_programs",
    "load_results",
    "markdown_table",
    "natural_key",
    "occurrences_label",
    "open_db",
    "per_rule",
    "record_run",
    "summary_rows",
    "table_header",
    "table_rows",
    "text_columns",
]
