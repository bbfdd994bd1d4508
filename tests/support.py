"""Shared test helpers: the suite's tiny run config, and fabricated sweeps for the store and report tests
(realistic run directories without training).

Each run gets a `summary.json` (schema of docs/architecture.md) and a `metrics.jsonl` with train and eval
lines; unseen-rule accuracy follows a sigmoid in log I (generalisation appears around 300 rules, as in
the paper), lowered by skewed rule frequencies, a single training family or a single occurrence count,
plus a little seed noise. Program runs (`program_family`) follow the same law in the number of programs
P, lowered by longer programs and longer executions, raised by the trace format, with every program split,
`k` and `steps` breakdowns and, for traces, trace and step accuracy.
"""

from __future__ import annotations

import json
import math
import signal
import string
from collections.abc import Iterable
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rewritelab.store import record_run

N_TEST = 400
TINY = Path(__file__).resolve().parent / "fixtures" / "tiny_run.yaml"  # the suite's own tiny run


def data_section(num_rules: int, seed: int, **overrides: Any) -> dict[str, Any]:
    """A resolved `data:` section (fixed budget unless `examples_per_rule` is given)."""
    data = {
        "alphabet": "abcdef",
        "input_len": [8, 12],
        "pattern_len": [2, 4],
        "replacement_len": [1, 4],
        "family": "random",
        "test_family": None,
        "num_rules": num_rules,
        "budget": 20000,
        "examples_per_rule": None,
        "noop_frac": 0.0,
        "rule_distribution": "uniform",
        "alpha": 1.0,
        "occurrences": 1,
        "test_occurrences": None,
        "test_rules": 100,
        "test_examples_per_rule": 10,
        "seed": seed,
    }
    data.update(overrides)
    if overrides.get("examples_per_rule") is not None and "budget" not in overrides:
        data["budget"] = None
    return data


def unseen_accuracy(data: dict[str, Any], seed: int) -> float:
    """The fabricated law: a sigmoid in log10 I centred near 300 rules, with the paper's penalties."""
    logit = 4.0 * (math.log10(data["num_rules"]) - math.log10(300))
    if data["rule_distribution"] == "powerlaw" and data["alpha"] < 0.2:
        logit -= 3.0 * (1 - data["num_rules"] / 5000)  # skew hurts few rules only
    family = data["family"]
    if isinstance(family, dict) and family.get("name") != "mixed":
        logit -= 4.0  # one restricted family alone does not generalise
    occurrences = data["occurrences"]
    if not isinstance(occurrences, list):
        logit -= 0.8
    noise = np.random.default_rng([seed, data["num_rules"]]).normal(0, 0.02)
    return float(np.clip(1 / (1 + math.exp(-logit)) + noise, 0.0, 1.0))


def _ci(accuracy: float, n: int) -> list[float]:
    half = 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 1e-4) / n)
    return [max(0.0, accuracy - half), min(1.0, accuracy + half)]


def _split_breakdown(accuracy: float, noop_frac: float, n: int) -> dict[str, Any]:
    n_noop = int(round(noop_frac * n))
    noop_acc = 0.97 if n_noop else 0.0
    applied_acc = (accuracy * n - noop_acc * n_noop) / (n - n_noop) if n_noop else accuracy
    cells = {"false": {"n": n - n_noop, "accuracy": min(max(applied_acc, 0.0), 1.0)}}
    if n_noop:
        cells["true"] = {"n": n_noop, "accuracy": noop_acc}
    copies = {"1": {"n": n - n_noop, "accuracy": cells["false"]["accuracy"]}}
    if n_noop:  # a no-op example's input holds no copy of the pattern
        copies["0"] = {"n": n_noop, "accuracy": noop_acc}
    return {"noop": cells, "occurrences": copies}


def program_family(k: int = 2, answer: str = "final") -> dict[str, Any]:
    """A resolved `program` family of k rules per program with every held-out split."""
    return {"name": "program", "k": [k, k], "patterns": "random", "terminating": 0.1, "steps": [1, 4],
            "max_steps": 16, "max_len": 16, "test_steps": [5, 8], "test_input_len": [11, 14], "strict": 6,
            "answer": answer}  # fmt: skip


def _is_program(data: dict[str, Any]) -> bool:
    return isinstance(data["family"], dict) and data["family"].get("name") == "program"


def _program_accuracy(data: dict[str, Any], seed: int) -> dict[str, Any]:
    """Accuracy per split and per execution step count of a fabricated program run."""
    family = data["family"]
    k = family["k"][0]
    logit = 4.0 * (math.log10(data["num_rules"]) - math.log10(300)) - 0.8 * (k - 2)
    logit += 1.0 if family["answer"] == "trace" else 0.0
    noise = np.random.default_rng([seed, data["num_rules"], k]).normal(0, 0.02)
    unseen = float(np.clip(1 / (1 + math.exp(-logit)) + noise, 0.0, 1.0))
    seen = min(1.0, 0.9 + 0.02 * seed)
    accuracy = {"test_seen": seen, "test_unseen": unseen, "test_unseen_strict": 0.8 * unseen,
                "test_ood_steps": 0.5 * unseen, "test_ood_length": 0.9 * unseen}  # fmt: skip
    steps = {split: range(5, 9) if split == "test_ood_steps" else range(1, 5) for split in accuracy}
    by_steps = {
        split: {
            str(s): {"n": N_TEST // 4, "accuracy": float(np.clip(a * (1.15 - 0.05 * s), 0, 1))}
            for s in steps[split]
        }  # fmt: skip
        for split, a in accuracy.items()
    }
    return {"accuracy": accuracy, "k": k, "steps": by_steps}


def _program_summary(data: dict[str, Any], seed: int) -> dict[str, Any]:
    law = _program_accuracy(data, seed)
    accuracy = law["accuracy"]
    summary = {
        "accuracy": accuracy,
        "ci95": {split: _ci(a, N_TEST) for split, a in accuracy.items()},
        "n": {split: N_TEST for split in accuracy},
        "breakdown": {
            split: {"k": {str(law["k"]): {"n": N_TEST, "accuracy": a}}, "steps": law["steps"][split]}
            for split, a in accuracy.items()
        },
    }
    if data["family"]["answer"] == "trace":
        summary["trace_accuracy"] = {split: 0.95 * a for split, a in accuracy.items()}
        summary["step_accuracy"] = {split: min(1.0, a + 0.05) for split, a in accuracy.items()}
    return summary


def fake_summary(data: dict[str, Any], seed: int, steps: int = 300) -> dict[str, Any]:
    common = {
        "train": {"steps": steps, "tokens": steps * 4096, "seconds": 12.5, "final_loss": 0.05},
        "config": {
            "data": data,
            "model": {"n_layer": 2, "n_head": 2, "d_model": 64, "dropout": 0.0, "preset": None},
            "train": {"seed": seed, "max_steps": steps, "lr": 0.001},
        },
        "code_version": "0.1.0+git.abc1234",
        "finished_at": "2025-01-01T00:00:00+00:00",
    }
    if _is_program(data):
        return {**_program_summary(data, seed), **common}
    unseen = unseen_accuracy(data, seed)
    seen = min(1.0, 0.9 + 0.05 * math.log10(data["num_rules"]) / 4 + 0.01 * seed)
    if data["noop_frac"]:
        unseen = data["noop_frac"] * 0.97 + (1 - data["noop_frac"]) * unseen
    accuracy = {"test_seen": seen, "test_unseen": unseen}
    breakdown = {split: _split_breakdown(a, data["noop_frac"], N_TEST) for split, a in accuracy.items()}
    if isinstance(data["test_family"], dict):
        breakdown["test_unseen"]["family"] = held_out_cells(data["family"], unseen)
    return {
        "accuracy": accuracy,
        "ci95": {split: _ci(a, N_TEST) for split, a in accuracy.items()},
        "n": {split: N_TEST for split in accuracy},
        "breakdown": breakdown,
        **common,
    }


def markdown_lines(text: str) -> list[str]:
    """The lines of a markdown export's results table (the package-versions table follows a blank line)."""
    return text.split("\n\n")[0].splitlines()


def held_out_cells(family: dict[str, Any], unseen: float) -> dict[str, Any]:
    """E4's unseen split read per held-out kind: a single family reaches k = 2 of its own kind (+30
    points), nothing else; the mixture scores the same on every kind."""
    own = family.get("name")
    return {
        kind: {"n": N_TEST // len(HELD_OUT), "accuracy": min(1.0, unseen + (0.3 if kind == own else 0.0))}
        for kind in HELD_OUT
    }


def metrics_lines(summary: dict[str, Any], evals: int = 5) -> list[dict[str, Any]]:
    """Train and eval lines whose eval accuracy climbs towards the run's final accuracy."""
    steps = summary["train"]["steps"]
    lines: list[dict[str, Any]] = []
    for i in range(1, evals + 1):
        step = steps * i // evals
        frac = 1 - math.exp(-3 * i / evals)
        lines.append(
            {
                "kind": "train",
                "step": step,
                "epoch": 0,
                "tokens": step * 4096,
                "seconds": i * 2.5,
                "lr": 1e-3,
                "loss": 2.0 * (1 - frac) + 0.05,
            }
        )
        final = summary["accuracy"]
        accuracy = {split: final[split] * frac / (1 - math.exp(-3)) for split in final}
        lines.append(
            {"kind": "eval", "step": step, "tokens": step * 4096, "seconds": i * 2.5, "accuracy": accuracy}
        )
    return lines


def _slug(value: Any) -> str:
    if isinstance(value, dict) and value.get("name") == "program":
        return f"program-k{value['k'][0]}-{value['answer']}-steps{'-'.join(map(str, value['steps']))}"
    if isinstance(value, dict):
        return str(value.get("name"))
    if isinstance(value, list):
        return "-".join(map(str, value))
    return str(value)


def make_sweep(
    root: Path,
    points: Iterable[dict[str, Any]],
    seeds: Iterable[int] = (0, 1),
    name: str = "fake",
    record: bool = True,
    metrics: bool = True,
) -> Path:
    """Write a sweep directory: one run per point × seed (`summary.json`, `metrics.jsonl`) + results.sqlite.

    A point is a dict of `data:` overrides and must include `num_rules`.
    """
    root.mkdir(parents=True, exist_ok=True)
    points = list(points)
    (root / "sweep.yaml").write_text(
        yaml.safe_dump({"preset": name, "description": f"fabricated sweep {name}", "seeds": list(seeds)})
    )
    for seed in seeds:
        for point in points:
            data = data_section(seed=seed, **point)
            run_id = ".".join(f"{k}={_slug(v)}" for k, v in point.items()) + f".seed={seed}"
            run_dir = root / "runs" / run_id
            run_dir.mkdir(parents=True)
            summary = fake_summary(data, seed)
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
            if metrics:
                text = "".join(json.dumps(line) + "\n" for line in metrics_lines(summary))
                (run_dir / "metrics.jsonl").write_text(text)
            if record:
                record_run(root / "results.sqlite", run_id, summary, root.name, name)
    return root


RULES = [10, 30, 100, 300, 1000]
REPEATED = {"name": "repeated", "k": [3, 4], "block_len": [2, 4]}
PERIODIC = {"name": "periodic", "k": [3, 4]}
MIRRORED = {"name": "mirrored", "k": [3, 4]}
MIXED = {"name": "mixed", "components": [dict(c, weight=1) for c in (REPEATED, PERIODIC, MIRRORED)]}


def e1_points(budgets: Iterable[int] = (20000,)) -> list[dict[str, Any]]:
    return [{"num_rules": i, "budget": b} for b in budgets for i in RULES]


def e2_points() -> list[dict[str, Any]]:
    return [{"noop_frac": f, "num_rules": i} for f in (0.0, 0.3) for i in RULES]


def e3_points() -> list[dict[str, Any]]:
    dists = [("uniform", 1.0)] + [("powerlaw", a) for a in (1.0, 0.5, 0.2, 0.1, 0.03)]
    return [{"rule_distribution": d, "alpha": a, "num_rules": i} for d, a in dists for i in (300, 3000)]


HELD_OUT = ("random", "repeated", "periodic", "mirrored")  # E4's held-out kinds: k = 1, and k = 2 of each
K2_HELD_OUT = [{"name": n, "k": 2, "weight": 1} for n in HELD_OUT[1:]]
E4_TEST_FAMILY = {"name": "mixed", "components": [{"name": "random", "weight": 1}, *K2_HELD_OUT]}


def e4_points() -> list[dict[str, Any]]:
    return [
        {"family": f, "num_rules": i, "test_family": E4_TEST_FAMILY}
        for f in (REPEATED, PERIODIC, MIRRORED, MIXED)
        for i in (100, 1000)
    ]


def e5_points() -> list[dict[str, Any]]:
    return [{"occurrences": o, "num_rules": i} for o in (1, 2, 4, [1, 2, 3, 4]) for i in (30, 100, 300, 1000)]


def program_points() -> list[dict[str, Any]]:
    """The markov-cpu design: P at k = 2 and k in {1, 2, 3} at P = 1000, in both answer formats."""
    designs = [(10, 2), (100, 2), (1000, 2), (5000, 2), (1000, 1), (1000, 3)]
    return [{"num_rules": p, "family": program_family(k, a)} for a in ("final", "trace") for p, k in designs]


# Tiny pretrained models (transformers is imported only when they are built)
CHARS = string.ascii_letters + string.digits + string.punctuation + " \n"
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def char_tokenizer(chat: bool):
    """One token per character (BPE with no merges), `<eos>` as end of sequence and padding."""
    import transformers
    from tokenizers import Tokenizer, decoders, models

    vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate(CHARS)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.decoder = decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tiny(path: Path, kind: str, with_tokenizer: bool = True, chat: bool = False) -> Path:
    """A tiny randomly initialised GPT-2 or Llama model (with `char_tokenizer`) saved in `path`: the
    tests of pretrained-model code run offline in seconds, nothing is downloaded."""
    import torch
    import transformers

    tok = char_tokenizer(chat)
    vocab = len(tok)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab,
            n_positions=256,
            n_embd=64,
            n_layer=2,
            n_head=4,
            bos_token_id=0,
            eos_token_id=0,
            initializer_range=0.3,
        )
    else:
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0,
            eos_token_id=0, pad_token_id=0, initializer_range=0.3,
        )  # fmt: skip
    torch.manual_seed(0)  # initializer_range 0.3: output logits large enough to fit the frozen head
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    if with_tokenizer:
        tok.save_pretrained(path)
    return path


def lm_config(model: Path, **train) -> dict:
    """A 2-rule run config (short strings) on a tiny model; `train` overrides train: fields."""
    return {
        "data": {
            "alphabet": "abcd", "input_len": 4, "pattern_len": 2, "replacement_len": 1, "num_rules": 2,
            "budget": 256, "test_rules": 2, "test_examples_per_rule": 16, "seed": 0,
            "validation_rules": 4, "validation_examples_per_rule": 8,  # what 16 patterns leave room for
        },
        "lm": {"model": str(model), "template": "plain",
               "lora": {"rank": 16, "alpha": 32, "target_modules": None}},
        "train": {
            "batch_size": 16, "lr": 1e-2, "warmup_steps": 5, "epochs": 4, "eval_every": 0,
            "checkpoint_every": 10, "device": "cpu", "threads": 1, "progress": "none", **train,
        },
    }  # fmt: skip


class Page(HTMLParser):
    """A report.html read back: per section (the id of its <h2>, "" before the first) its paragraphs'
    text, its tables (rows of (row class, cell texts)) and its images' alt texts."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, dict[str, list]] = {}
        self._section = self._new("")
        self._text: list[str] | None = None
        self._row: tuple[str, list[str]] | None = None
        self.feed(text)

    def _new(self, name: str) -> dict[str, list]:
        return self.sections.setdefault(name, {"paragraphs": [], "tables": [], "images": []})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "h2":
            self._section = self._new(attr.get("id") or "")
        elif tag == "table":
            self._section["tables"].append([])
        elif tag == "tr":
            self._row = (attr.get("class") or "", [])
        elif tag in ("td", "th", "p"):
            self._text = []
        elif tag == "img":
            self._section["images"].append(attr.get("alt") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._text is not None:
            self._row[1].append("".join(self._text).strip())
            self._text = None
        elif tag == "p" and self._text is not None:
            self._section["paragraphs"].append("".join(self._text).strip())
            self._text = None
        elif tag == "tr" and self._row is not None:
            self._section["tables"][-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def text(self, section: str) -> str:
        return " ".join(self.sections[section]["paragraphs"])

    def table(self, section: str, index: int = 0) -> list[tuple[str, list[str]]]:
        return self.sections[section]["tables"][index]


# The micro sweeps' run: 3 letters, 4 rules, a 1-layer width-16 model (seconds to train).
MICRO_DATA = {
    "alphabet": "abc", "input_len": 6, "pattern_len": 2, "replacement_len": 1, "num_rules": 4, "budget": 400,
    "test_rules": 4, "test_examples_per_rule": 4,
    "validation_rules": 0,  # 9 patterns leave none to spare (and micro sweeps draw no curves)
}  # fmt: skip
MICRO_MODEL = {"n_layer": 1, "n_head": 1, "d_model": 16}


@contextmanager
def stop_after(steps: int):
    """stop_requests stand-in: a SIGTERM 'arrives' after `steps` optimizer steps."""

    class Stop(list):
        checks = 0

        def __bool__(self):  # the loop asks once per step, after it
            Stop.checks += 1
            return Stop.checks >= steps

        def __getitem__(self, i):
            return signal.SIGTERM

    yield Stop()
