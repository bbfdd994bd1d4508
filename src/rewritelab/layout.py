"""Every name rewritelab gives a file or directory on disk, in one place.

Runs, sweeps, datasets and reports are read back by other stages (a sweep reads its runs' summaries, the
report reads their metrics, `train --data` reads a dataset directory): renaming a file here renames it
for every reader and writer at once. docs/architecture.md describes what each file holds.
"""

from __future__ import annotations

from pathlib import Path

# Every folder rewritelab writes (a dataset, run, sweep or report): see rewritelab.folders.
FOLDER_MARKER = ".rewritelab.json"  # {"kind": "run"}: which kind of output the folder holds
FOLDER_LOCK = ".rewritelab.lock"  # flock'ed by the process writing a run or sweep folder; holds its PID

# Dataset splits: those every dataset holds, in the order they are generated and written.
SPLITS = ("train", "test_seen", "test_unseen")
EVAL_SPLITS = ("test_seen", "test_unseen")
# Held-out rules (programs) of their own, disjoint from training and test_unseen (`data.validation_rules`):
# the learning curves' decision split. Written after train; datasets made before it existed have none.
VALIDATION = "validation"
# Program datasets (docs/markov.md) add a stricter held-out split and two out-of-distribution ones.
PROGRAM_SPLITS = (*SPLITS, "test_unseen_strict", "test_ood_steps", "test_ood_length")

# A dataset directory (`rewritelab generate --out DIR`).
DATASET_MANIFEST = "manifest.json"
RULES_FILE = "rules.jsonl"
HF_DIR = "hf"  # `generate --format hf`: a DatasetDict as `datasets` saves it (save_to_disk):
HF_INDEX = "dataset_dict.json"  # HF_DIR/dataset_dict.json, and a folder HF_DIR/SPLIT/ of these files
HF_SPLIT_FILES = ("data-*-of-*.arrow", "dataset_info.json", "state.json")
SFT_DIR = "sft"  # `generate --format instruction / chat`: the text rendering, SFT_DIR/SPLIT.jsonl
VERL_DIR = "verl"  # `generate --format verl`: VERL_DIR/SPLIT.parquet
LM_EVAL_DIR = "lm_eval"  # `generate --format lm-eval`: the lm-evaluation-harness task folder
LM_EVAL_MODULE = "tasks"  # LM_EVAL_DIR/tasks.py: the tasks' hooks, reading LM_EVAL_DIR/SPLIT.jsonl
LM_EVAL_TAG = "rewritelab"  # LM_EVAL_DIR/rewritelab_SPLIT.yaml: one task per test split, tagged this
DATA_FILES = (*(f"{name}.jsonl" for name in (*SPLITS, VALIDATION)), RULES_FILE)


def split_file(split: str) -> str:
    return f"{split}.jsonl"


# A run directory (`rewritelab train --out RUN_DIR`).
RUN_CONFIG = "config.yaml"
DATA_MANIFEST = "data_manifest.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
PREDICTIONS_DIR = "predictions"
ADAPTER_DIR = "adapter"  # LoRA runs: the final adapter as peft writes it (PeftModel.from_pretrained)
TRACKING_DIR = "tracking"  # train.track: TensorBoard event files and the offline W&B run


# Every name a run directory may hold, summary.json (which marks the run finished) last: replacing a run
# (`sweep --reuse`) replaces or deletes these and no other file; in predictions/, only the split files.
RUN_NAMES = (
    FOLDER_MARKER,
    RUN_CONFIG,
    DATA_MANIFEST,
    CHECKPOINT,
    METRICS,
    *(f"{PREDICTIONS_DIR}/{split}.jsonl" for split in PROGRAM_SPLITS),
    ADAPTER_DIR,
    TRACKING_DIR,
    SUMMARY,
)


def predictions_file(run_dir: Path, split: str) -> Path:
    return run_dir / PREDICTIONS_DIR / f"{split}.jsonl"


# A sweep directory (`rewritelab sweep --out SWEEP_DIR`).
SWEEP_FILE = "sweep.yaml"
RESULTS_DB = "results.sqlite"
RUNS_DIR = "runs"
LOGS_DIR = "logs"  # local backend: one log per run
REPORT_DIR = "report"
DEFAULT_SWEEPS_ROOT = "runs"  # `reproduce NAME` writes to runs/NAME unless --out says otherwise


def sweep_run_dir(sweep_dir: Path, run_id: str) -> Path:
    return Path(sweep_dir) / RUNS_DIR / run_id


# A report directory.
REPORT_HTML = "report.html"
