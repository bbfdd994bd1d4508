"""Dataset files: `write_dataset` (JSONL splits, rules.jsonl, manifest.json, optional HF export) and
`load_dataset`, which verifies every file against the SHA-256 recorded in the manifest, the manifest
against its own checksum, and the counts its spec fixes against the files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rewritelab.config import from_dict
from rewritelab.data.spec import DatasetSpec
from rewritelab.data.tables import (
    Dataset,
    ProgramSplit,
    ProgramTable,
    RuleTable,
    Split,
    program_from_rows,
)
from rewritelab.errors import UserError
from rewritelab.folders import DATASET, check_folder, replacing_folder
from rewritelab.io import dumps_json
from rewritelab.layout import (
    DATASET_MANIFEST,
    HF_DIR,
    HF_INDEX,
    HF_SPLIT_FILES,
    LM_EVAL_DIR,
    LM_EVAL_MODULE,
    LM_EVAL_TAG,
    PROGRAM_SPLITS,
    RULES_FILE,
    SFT_DIR,
    SPLITS,
    VALIDATION,
    VERL_DIR,
    split_file,
)

_WRITE_CHUNK = 1 << 16  # JSONL lines joined per write
# Every name a dataset directory may hold, manifest.json last: regenerating a dataset replaces (or
# deletes) these and no other file. In the export folders only the files the exports write are named, so
# a user's file in hf/, sft/, verl/ or lm_eval/ stays too (see `io.atomic_dir`).
DATASET_NAMES = (
    *(split_file(name) for name in (*PROGRAM_SPLITS, VALIDATION)),
    RULES_FILE,
    *(f"{HF_DIR}/{name}/{file}" for name in (*PROGRAM_SPLITS, VALIDATION) for file in HF_SPLIT_FILES),
    f"{HF_DIR}/{HF_INDEX}",
    *(f"{SFT_DIR}/{split_file(name)}" for name in (*PROGRAM_SPLITS, VALIDATION)),
    *(f"{VERL_DIR}/{name}.parquet" for name in (*PROGRAM_SPLITS, VALIDATION)),
    f"{LM_EVAL_DIR}/{LM_EVAL_MODULE}.py",
    *(f"{LM_EVAL_DIR}/{split_file(name)}" for name in PROGRAM_SPLITS),
    *(f"{LM_EVAL_DIR}/{LM_EVAL_TAG}_{name}.yaml" for name in PROGRAM_SPLITS),
    DATASET_MANIFEST,
)
MANIFEST_CHECKSUM = "manifest_sha256"  # manifest.json's own checksum: the spec is covered like the files


def check_output_dir(out_dir: str | Path) -> None:
    """Refuse a directory that is not a dataset (an existing dataset is regenerated in place), before
    the generation work rather than after it."""
    check_folder(out_dir, DATASET)


def require_hf():
    """The Hugging Face `datasets` package, or a `UserError` saying how to install it."""
    try:
        import datasets as hf_datasets
    except ImportError:
        raise UserError(
            "--format hf: the Hugging Face 'datasets' package is not installed; pip install 'rewritelab[hf]'"
        ) from None
    return hf_datasets


def write_dataset(ds: Dataset, out_dir: str | Path, hf: bool = False) -> dict[str, Any]:
    """Write the JSONL splits, rules.jsonl and manifest.json (plus `hf/` if asked) atomically.

    Returns the manifest as written, with the SHA-256 of every data file. An earlier dataset in `out_dir`
    is replaced; files of the user's beside it stay.
    """
    hf_module = require_hf() if hf else None
    escape = _escaper(ds.spec.alphabet)
    with replacing_folder(out_dir, DATASET, DATASET_NAMES) as tmp:
        files = {}
        for name, split in ds.splits.items():
            chunks = _json_chunks(split) if isinstance(split, ProgramSplit) else _split_chunks(split, escape)
            files[split_file(name)] = _write_chunks(tmp / split_file(name), chunks)
        chunks = (
            _json_chunks(ds.rules) if isinstance(ds.rules, ProgramTable) else _rule_chunks(ds.rules, escape)
        )
        files[RULES_FILE] = _write_chunks(tmp / RULES_FILE, chunks)
        manifest = {**ds.manifest, "files": files}
        manifest[MANIFEST_CHECKSUM] = manifest_checksum(manifest)
        (tmp / DATASET_MANIFEST).write_text(dumps_json(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
        if hf_module is not None:
            _write_hf(hf_module, ds, tmp / HF_DIR)
    return manifest


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """SHA-256 of a manifest's canonical JSON, its own checksum left out. The file hashes cover the data,
    this covers the spec beside them: a run records the spec it trained on from here."""
    body = {k: v for k, v in manifest.items() if k != MANIFEST_CHECKSUM}
    return hashlib.sha256(dumps_json(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _escaper(alphabet: str):
    """Strings over an alphabet without `"` or `\\` are already valid JSON string bodies."""
    if '"' not in alphabet and "\\" not in alphabet:
        return lambda column: column
    return lambda column: [json.dumps(s, ensure_ascii=False)[1:-1] for s in column]


def _write_chunks(path: Path, chunks: Iterable[str]) -> dict[str, Any]:
    digest, size, lines = hashlib.sha256(), 0, 0
    with open(path, "wb") as f:
        for chunk in chunks:
            data = chunk.encode("utf-8")
            digest.update(data)
            f.write(data)
            size += len(data)
            lines += chunk.count("\n")
    return {"sha256": digest.hexdigest(), "bytes": size, "lines": lines}


_BOOL = ("false", "true")


def _split_chunks(split: Split, escape) -> Iterator[str]:
    cols = (
        split.rule_id.tolist(), escape(split.pattern), escape(split.replacement), escape(split.input),
        escape(split.output), split.noop.tolist(), split.occurrences.tolist(), split.family,
        split.k.tolist(), split.train_count.tolist(),
    )  # fmt: skip
    for lo in range(0, len(split), _WRITE_CHUNK):
        yield "".join(
            [
                f'{{"rule_id": {i}, "pattern": "{p}", "replacement": "{r}", "input": "{x}", "output": "{y}", '
                f'"noop": {_BOOL[n]}, "occurrences": {o}, "family": "{f}", "k": {k}, "train_count": {c}}}\n'
                for i, p, r, x, y, n, o, f, k, c in zip(
                    *(col[lo : lo + _WRITE_CHUNK] for col in cols), strict=True
                )
            ]
        )


def _json_chunks(table: ProgramSplit | ProgramTable) -> Iterator[str]:
    """Program tables: one `json.dumps` line per row (programs are nested, so no hand-made format)."""
    lines: list[str] = []
    for row in table.rows():
        lines.append(dumps_json(row, ensure_ascii=False) + "\n")
        if len(lines) == _WRITE_CHUNK:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


def _rule_chunks(rules: RuleTable, escape) -> Iterator[str]:
    cols = (
        rules.rule_id.tolist(), rules.split, escape(rules.pattern), escape(rules.replacement), rules.family,
        rules.k.tolist(), rules.train_count.tolist(),
    )  # fmt: skip
    for lo in range(0, len(rules), _WRITE_CHUNK):
        yield "".join(
            [
                f'{{"rule_id": {i}, "split": "{s}", "pattern": "{p}", "replacement": "{r}", "family": "{f}", '
                f'"k": {k}, "train_count": {c}}}\n'
                for i, s, p, r, f, k, c in zip(*(col[lo : lo + _WRITE_CHUNK] for col in cols), strict=True)
            ]
        )


def _write_hf(hf_module, ds: Dataset, path: Path) -> None:
    was_enabled = hf_module.is_progress_bar_enabled()
    hf_module.disable_progress_bars()  # keep the CLI's output to the statistics table
    try:
        dataset_dict = hf_module.DatasetDict(
            {name: hf_module.Dataset.from_dict(split.to_lists()) for name, split in ds.splits.items()}
        )
        dataset_dict.save_to_disk(str(path))
    finally:
        if was_enabled:
            hf_module.enable_progress_bars()


def load_dataset(data_dir: str | Path) -> Dataset:
    """Read a written dataset back, verifying every file against the SHA-256 in its manifest."""
    root = Path(data_dir)
    manifest_path = root / DATASET_MANIFEST
    if not manifest_path.is_file():
        raise UserError(
            f"{root}: not a rewritelab dataset (no manifest.json); create one with "
            f"`rewritelab generate CONFIG.yaml --out {root}`"
        )
    manifest = _read_manifest(manifest_path)
    files = manifest["files"]
    spec_data = manifest["spec"]
    if isinstance(spec_data, dict) and "validation_rules" not in spec_data:
        spec_data = {**spec_data, "validation_rules": 0}  # written before validation splits: it has none
    spec = from_dict(DatasetSpec, spec_data, f"{manifest_path}: data")
    programs = spec.programs is not None
    written = manifest.get("splits", {})
    names = [name for name in PROGRAM_SPLITS if name in written] if programs else list(SPLITS)
    if spec.validation_rules:
        names.insert(1, VALIDATION)  # after train, as written
    tables = {}
    for name in [*(split_file(split) for split in names), RULES_FILE]:
        tables[name] = _read_jsonl(root / name, files.get(name, {}).get("sha256"))
    split_cls, rule_cls = (ProgramSplit, ProgramTable) if programs else (Split, RuleTable)
    splits = {
        name: _columns_from_rows(split_cls, tables[split_file(name)], root / split_file(name))
        for name in names
    }
    rules = _columns_from_rows(rule_cls, tables[RULES_FILE], root / RULES_FILE)
    _check_counts(spec, rules.split, len(splits["train"]), manifest_path)
    return Dataset(spec=spec, splits=splits, manifest=manifest, rules=rules)


def _read_manifest(path: Path) -> dict[str, Any]:
    """A dataset's manifest.json, as `write_dataset` wrote it: strict JSON (no NaN or Infinity), the
    spec and file table in their shapes, and its own checksum, which must be there and match. Without the
    checksum an edited spec would go unnoticed, and a run would record the invented one."""
    try:
        manifest = json.loads(path.read_text("utf-8"), parse_constant=_refuse, parse_float=_finite)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a non-finite number, nested too deep
        manifest = None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not (
        isinstance(manifest, dict)
        and isinstance(manifest.get("spec"), dict)
        and isinstance(files, dict)
        and all(isinstance(entry, dict) for entry in files.values())
        and isinstance(manifest.get("splits", {}), dict)
    ):
        raise UserError(f"{path}: damaged (not a dataset manifest); regenerate the dataset")
    recorded = manifest.get(MANIFEST_CHECKSUM)
    if recorded is None:
        raise UserError(
            f"{path}: no {MANIFEST_CHECKSUM} (it was removed, or the dataset predates it), so its spec "
            "cannot be trusted; regenerate the dataset with `rewritelab generate`"
        )
    if recorded != manifest_checksum(manifest):
        raise UserError(
            f"{path}: edited after it was written (its checksum no longer matches its content); "
            "regenerate the dataset with `rewritelab generate` instead of editing the manifest"
        )
    return manifest


def _refuse(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _check_counts(spec: DatasetSpec, rule_splits: list[str], train_examples: int, where: Path) -> None:
    """The sizes the manifest's spec fixes, against the files (for a manifest whose checksum was made
    again after an edit, or one beside other files): a run must not record 500 rules for data that holds
    2."""
    budget = "budget" if spec.budget is not None else "examples_per_rule"
    checks = (
        ("num_rules", spec.num_rules, rule_splits.count("train"), "training rules", RULES_FILE),
        ("test_rules", spec.test_rules, rule_splits.count("heldout"), "held-out rules", RULES_FILE),
        (
            "validation_rules",
            spec.validation_rules,
            rule_splits.count(VALIDATION),
            "validation rules",
            RULES_FILE,
        ),
        (budget, spec.train_examples, train_examples, "training examples", split_file("train")),
    )
    for name, stated, actual, noun, file in checks:
        if stated != actual:
            raise UserError(
                f"{where}: its spec ({name}) gives {stated:,} {noun} but {file} holds {actual:,} (the "
                "manifest was edited, or belongs to other files); regenerate the dataset"
            )


def _read_jsonl(path: Path, sha256: str | None) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path}: missing from the dataset directory; regenerate the dataset")
    data = path.read_bytes()
    if sha256 is None or hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(
            f"{path}: SHA-256 does not match manifest.json (modified or truncated); regenerate the dataset"
        )
    try:
        lines = data.decode("utf-8").splitlines()
        return json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        raise UserError(f"{path}: damaged (not one JSON object per line); regenerate the dataset") from None


_INT_COLUMNS = {"rule_id", "occurrences", "k", "train_count", "steps"}


def _columns_from_rows(cls, rows: list[dict[str, Any]], path: Path):
    try:
        values = {name: [row[name] for row in rows] for name in cls.columns}
    except (KeyError, TypeError):
        raise UserError(f"{path}: damaged (a row lacks a column of {', '.join(cls.columns)})") from None
    for name in cls.columns:
        if name in _INT_COLUMNS:
            values[name] = np.array(values[name], dtype=np.int64)
        elif name == "noop":
            values[name] = np.array(values[name], dtype=bool)
        elif name == "program":
            try:
                values[name] = [program_from_rows(rows) for rows in values[name]]
            except (KeyError, TypeError):
                raise UserError(f"{path}: damaged (a program is not a list of rule objects)") from None
    return cls(**values)
