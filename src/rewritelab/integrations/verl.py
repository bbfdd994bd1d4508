"""verl: the parquet layout its RL trainers read, and the reward function its reward manager calls.

`rewritelab generate CONFIG --out DIR --format verl` writes DIR/verl/SPLIT.parquet, one row per example:
`data_source` ("rewritelab"), `prompt` (the chat messages: one user turn), `ability`, `reward_model`
(`{"style": "rule", "ground_truth": answer}`) and `extra_info` (the entry's metadata plus `index`: the
instruction itself, so the reward is recomputed, not looked up). Point verl's
`custom_reward_function.path` at this file and `.name` at `compute_score`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.io import atomic_write_bytes
from rewritelab.lm import score_answer

ABILITY = "string-rewriting"


def verl_rows(entries: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """verl's row layout of each entry."""
    for entry in entries:
        meta = entry["metadata"]
        yield {
            "data_source": meta["source_dataset"],
            "prompt": [{"role": "user", "content": entry["question"]}],
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": entry["answer"]},
            "extra_info": {"index": meta["source_index"], **meta},
        }


def write_verl(splits: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """out/SPLIT.parquet for every split's entries (each file written atomically)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("--format verl needs pyarrow; pip install 'rewritelab[parquet]'") from None
    import io

    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(list(verl_rows(rows))), buffer)
        atomic_write_bytes(out / f"{name}.parquet", buffer.getvalue())


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: dict[str, Any] | None = None, **_: Any
) -> float:
    """verl's reward-function signature: the verifier's strict score of `solution_str`, recomputed from
    the instruction in `extra_info` (`ground_truth` is not trusted)."""
    if not isinstance(extra_info, dict):
        raise UserError("verl reward: extra_info is missing; train on files written by --format verl")
    return score_answer(solution_str, {"metadata": extra_info})
