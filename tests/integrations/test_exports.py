"""`generate --format verl` (parquet read back, reward recomputed) and `--format lm-eval` (the task folder
run by lm-evaluation-harness on a tiny random model, offline)."""

from __future__ import annotations

import json

import pytest

from rewritelab.cli import main
from rewritelab.config import from_dict
from rewritelab.data import DatasetSpec, generate_dataset
from rewritelab.lm import cipher_table, dataset_entries

DATA = {"alphabet": "abcdef", "input_len": 6, "pattern_len": 2, "replacement_len": 2, "num_rules": 4,
        "budget": 40, "test_rules": 2, "test_examples_per_rule": 3, "noop_frac": 0.4, "seed": 0}  # fmt: skip
LM = {"task": {"kind": "encrypted", "cipher_seed": 2}, "letters": "spaced"}


def generate(tmp_path, fmt: str):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": DATA, "lm": LM}))
    assert main(["generate", str(config), "--out", str(tmp_path / "d"), "--format", fmt]) == 0
    return tmp_path / "d"


def test_verl_parquet_reads_back_with_prompt_ground_truth_and_extra_info(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    from rewritelab.integrations.verl import compute_score

    out = generate(tmp_path, "verl")
    plain = generate_dataset(from_dict(DatasetSpec, DATA, "data"))
    table = cipher_table(DATA["alphabet"], 2)
    for name, split in plain.splits.items():
        rows = pq.read_table(out / "verl" / f"{name}.parquet").to_pylist()
        assert len(rows) == len(split)
        for row, y in zip(rows, split.output, strict=True):
            assert row["data_source"] == "rewritelab" and row["prompt"][0]["role"] == "user"
            truth = row["reward_model"]["ground_truth"]
            assert row["reward_model"]["style"] == "rule" and truth == " ".join(y.translate(table))
            assert row["extra_info"]["split"] == name and row["extra_info"]["heldout"] == (
                name in ("test_unseen", "validation")
            )
            assert compute_score(row["data_source"], truth, truth, row["extra_info"]) == 1.0
            assert compute_score(row["data_source"], y + "x", truth, row["extra_info"]) == 0.0
    assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))


def test_lm_eval_task_scores_a_hf_model_with_the_verifier(tmp_path, tiny_llama, capsys):
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    folder = generate(tmp_path, "lm-eval") / "lm_eval"
    assert sorted(p.name for p in folder.glob("*.yaml")) == [
        "rewritelab_test_seen.yaml",
        "rewritelab_test_unseen.yaml",
    ]
    tasks = TaskManager(include_path=str(folder), include_defaults=False)  # ours only: the scan is quick
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_llama},dtype=float32", tasks=["rewritelab"], device="cpu",
        task_manager=tasks, log_samples=True, batch_size=8,
    )  # fmt: skip
    spec = from_dict(DatasetSpec, DATA, "data")
    expected = dataset_entries(generate_dataset(spec), "encrypted", 2, spaced=True)
    from rewritelab.lm import score_answer

    for split in ("test_seen", "test_unseen"):
        samples = results["samples"][f"rewritelab_{split}"]
        assert len(samples) == len(expected[split])
        for sample in samples:
            entry = expected[split][sample["doc_id"]]
            assert sample["doc"]["question"] == entry["question"] and sample["target"] == entry["answer"]
            assert sample["exact_match"] == score_answer(sample["filtered_resps"][0], entry)
        assert "exact_match,none" in results["results"][f"rewritelab_{split}"]
    from rewritelab.integrations.lm_eval import process_results

    entry = expected["test_unseen"][0]
    assert process_results(entry, [" " + entry["answer"]]) == {"exact_match": 1.0}
    assert process_results(entry, [entry["metadata"]["input"]]) == {"exact_match": 0.0}
