"""Rules, instruction families and datasets: everything before the tokenizer, in the data path's order.

- `rules`: `Rule`, `apply_once` (the reference rewriter every answer comes from), Markov programs.
- `ranges`, `families`, `mixed`: `IntRange` and the registry of instruction families (pattern samplers).
- `programs`, `program_sampling`, `program_data`: the `program` family (instructions that are Markov
  programs), the sampling of its programs and examples, and its datasets (program pools, held-out and
  out-of-distribution splits).
- `spec`: `DatasetSpec`, the `data:` config section, and its validation.
- `tables`: the column tables `Split`, `RuleTable` and `Dataset`.
- `codec`, `sampling`, `inputs`, `generate`: `generate_dataset` (rules, training counts, inputs).
- `memory`: the memory a dataset needs, estimated before it is generated (`check_memory`).
- `manifest`: the statistics recorded in a dataset's manifest and `dataset_stats`; `without_validation`
  (a dataset as generated before validation splits existed).
- `files`: `write_dataset` / `load_dataset` (JSONL, manifest, optional Hugging Face export).

Importing the package registers every built-in family (`mixed` included).
"""

from rewritelab.data.families import (
    FAMILIES,
    Family,
    MirroredFamily,
    PeriodicFamily,
    RandomFamily,
    RepeatedFamily,
    primitive_words,
    register,
)
from rewritelab.data.files import (
    MANIFEST_CHECKSUM,
    check_output_dir,
    load_dataset,
    require_hf,
    write_dataset,
)
from rewritelab.data.generate import generate_dataset, sample_examples
from rewritelab.data.manifest import (
    dataset_stats,
    frequency_table,
    gini,
    manifest_without_validation,
    without_validation,
)
from rewritelab.data.memory import available_memory, check_memory, estimate_bytes
from rewritelab.data.mixed import Component, MixedFamily
from rewritelab.data.program_data import verify_programs_disjoint
from rewritelab.data.program_sampling import execute
from rewritelab.data.programs import AnswerFormat, ProgramFamily
from rewritelab.data.ranges import Context, IntRange, PatternBatch
from rewritelab.data.rules import (
    DEFAULT_MAX_STEPS,
    MarkovProgram,
    Rule,
    Step,
    StepLimitError,
    apply_once,
    count_occurrences,
    load_ruleset,
    parse_ruleset,
)
from rewritelab.data.sampling import largest_remainder, training_counts
from rewritelab.data.spec import DatasetSpec, Occurrences, replacement_count
from rewritelab.data.tables import (
    COLUMNS,
    PROGRAM_COLUMNS,
    RULE_COLUMNS,
    Dataset,
    ProgramSplit,
    ProgramTable,
    RuleTable,
    Split,
    program_from_rows,
    program_rows,
)
from rewritelab.layout import DATA_FILES, PROGRAM_SPLITS, SPLITS

__all__ = [
    # rules
    "DEFAULT_MAX_STEPS",
    "MarkovProgram",
    "Rule",
    "Step",
    "StepLimitError",
    "apply_once",
    "count_occurrences",
    "load_ruleset",
    "parse_ruleset",
    # families
    "FAMILIES",
    "Component",
    "Context",
    "Family",
    "IntRange",
    "MirroredFamily",
    "MixedFamily",
    "PatternBatch",
    "PeriodicFamily",
    "RandomFamily",
    "RepeatedFamily",
    "primitive_words",
    "register",
    # programs
    "AnswerFormat",
    "ProgramFamily",
    "execute",
    "program_from_rows",
    "program_rows",
    "verify_programs_disjoint",
    # spec and tables
    "COLUMNS",
    "PROGRAM_COLUMNS",
    "PROGRAM_SPLITS",
    "RULE_COLUMNS",
    "SPLITS",
    "Dataset",
    "DatasetSpec",
    "Occurrences",
    "ProgramSplit",
    "ProgramTable",
    "RuleTable",
    "Split",
    "replacement_count",
    # generation and its statistics
    "available_memory",
    "check_memory",
    "dataset_stats",
    "estimate_bytes",
    "frequency_table",
    "generate_dataset",
    "sample_examples",
    "gini",
    "largest_remainder",
    "manifest_without_validation",
    "training_counts",
    "without_validation",
    # files
    "DATA_FILES",
    "MANIFEST_CHECKSUM",
    "check_output_dir",
    "load_dataset",
    "require_hf",
    "write_dataset",
]
