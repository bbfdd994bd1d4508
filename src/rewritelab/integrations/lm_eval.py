"""lm-evaluation-harness: a task per test split, scored by the verifier.

`rewritelab generate CONFIG --out DIR --format lm-eval` writes DIR/lm_eval/: the test splits' entries
(SPLIT.jsonl), one task file per split (`rewritelab_SPLIT.yaml`, tagged `rewritelab`) and `tasks.py`,
whose hooks call the functions below. Then

    lm_eval --model hf --model_args pretrained=MODEL --tasks rewritelab --include_path DIR/lm_eval

decodes greedily after the plain prompt (the instruction and "Answer:"; add `--apply_chat_template` for
a chat model) and reports `exact_match`: the verifier's strict score, recomputed from each example's
instruction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rewritelab.io import atomic_write_text
from rewritelab.layout import LM_EVAL_MODULE as TASK_MODULE
from rewritelab.layout import LM_EVAL_TAG as TAG
from rewritelab.layout import VALIDATION
from rewritelab.lm import plain_prompt, score_answer

_TASK = """\
task: {task}
tag: [{tag}]
custom_dataset: !function {module}.{split}
test_split: test
output_type: generate_until
doc_to_text: !function {module}.doc_to_text
doc_to_target: answer
process_results: !function {module}.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
generation_kwargs:
  until: ["\\n"]
  do_sample: false
  max_gen_toks: {max_tokens}
metadata:
  version: 1.0
"""

_HOOKS = '''"""lm-evaluation-harness hooks of this folder (`rewritelab generate --format lm-eval`)."""

from pathlib import Path

from rewritelab.integrations.lm_eval import doc_to_text, load_docs, process_results

HERE = Path(__file__).resolve().parent
__all__ = ["doc_to_text", "process_results", {names}]
'''


def doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt: the instruction sentence and the answer cue (our plain template)."""
    return plain_prompt(doc["question"])


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval's per-example hook: the verifier's strict score of the generated text."""
    return {"exact_match": score_answer(results[0], doc)}


def load_docs(path: str | Path, **_: Any) -> Any:
    """A split's entries as the `{"test": Dataset}` that lm-eval's `custom_dataset` returns."""
    import datasets

    rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def write_tasks(splits: dict[str, list[dict[str, Any]]], out: Path) -> list[str]:
    """The task folder for every test split of `splits` (entries by split name; not train, nor the
    validation split, which steers training); returns the task names."""
    out.mkdir(parents=True, exist_ok=True)
    tests = {name: rows for name, rows in splits.items() if name not in ("train", VALIDATION)}
    hooks = [
        f"def {name}(**_):\n    return load_docs(HERE / {json.dumps(name + '.jsonl')})\n" for name in tests
    ]
    names = ", ".join(json.dumps(name) for name in tests)
    atomic_write_text(out / f"{TASK_MODULE}.py", _HOOKS.format(names=names) + "\n\n" + "\n\n".join(hooks))
    tasks = []
    for name, rows in tests.items():
        atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
        longest = max((len(row["answer"]) for row in rows), default=0)
        task = f"{TAG}_{name}"
        text = _TASK.format(task=task, tag=TAG, module=TASK_MODULE, split=name, max_tokens=2 * longest + 8)
        atomic_write_text(out / f"{task}.yaml", text)
        tasks.append(task)
    return tasks
