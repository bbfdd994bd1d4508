"""The verifier: is a model's answer to an example right? The one definition that RL rewards, the
reasoning-gym datasets, the lm-eval task and the verl export share.

An example travels as an *entry* in reasoning-gym's shape, `{"question", "answer", "metadata"}`, whose
metadata holds the instruction itself (the rule or the Markov program, the input, the task and its
cipher, the letter spacing) besides what a trainer splits results by (instruction id, seen / held-out,
family, k, occurrences, no-op, program steps). `score_answer` never trusts the stored answer: it
recomputes the correct output from the instruction with the reference rewriter (`apply_once`) or the
Markov interpreter, enciphers it for the encrypted task, and scores strictly — 1.0 for exactly that
string, 0.0 otherwise. reasoning-gym's default gives partial credit when an answer merely *contains*
the target; on rewrites that rewards copying the input, so there is none here unless asked for:
`shaped=True` gives 1 − (edit distance / length of the longer string), a dense signal for RL that is
still 1.0 only for the exact answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rewritelab.data import (
    DEFAULT_MAX_STEPS,
    Dataset,
    ProgramSplit,
    Split,
    apply_once,
    program_from_rows,
    program_rows,
)
from rewritelab.errors import UserError
from rewritelab.lm.prompts import ANSWER_CUE, cipher_table, instruction, program_instruction, spell, unspell

SOURCE = "rewritelab"  # metadata["source_dataset"]: reasoning-gym's composite routes scoring by it
HELDOUT_SPLITS = ("validation", "test_unseen", "test_unseen_strict", "test_ood_steps", "test_ood_length")

# Chat wrapping a decoded completion may keep: an assistant header before the answer, end-of-turn tokens
# after it (ChatML as SmolLM2 writes it, Llama 3, Gemma, and the common end-of-sequence tokens).
_HEADER = re.compile(
    r"^(?:<\|im_start\|>assistant\n|<\|start_header_id\|>assistant<\|end_header_id\|>\s*|<start_of_turn>model\n)"
)
_CLOSERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>", "<eos>")


def entries(
    split: Split | ProgramSplit,
    split_name: str,
    task: str = "rewrite",
    cipher_seed: int = 0,
    alphabet: str = "",
    spaced: bool = False,
    max_steps: int = DEFAULT_MAX_STEPS,
    start: int = 0,
) -> Iterator[dict[str, Any]]:
    """One entry per example of a (plain, not yet enciphered) split; `source_index` counts from `start`.

    `alphabet` and `cipher_seed` define the encrypted task's substitution; `max_steps` is the program
    family's step cap (the interpreter's limit when the verifier reruns a program).
    """
    encrypted = task == "encrypted"
    if encrypted and not alphabet:
        raise UserError("the encrypted task needs the dataset's alphabet to rebuild its cipher")
    base = {"source_dataset": SOURCE, "split": split_name, "heldout": split_name in HELDOUT_SPLITS,
            "task": task, "letters": "spaced" if spaced else "joined"}  # fmt: skip
    if encrypted:
        base.update(alphabet=alphabet, cipher_seed=cipher_seed)
    programs = isinstance(split, ProgramSplit)
    for i, row in enumerate(split.rows()):
        meta = {**base, "source_index": start + i, "rule_id": row["rule_id"], "family": row["family"]}
        meta["k"] = row["k"]
        if programs:
            program = split.program[i]
            meta.update(program=program_rows(program), input=row["input"], steps=row["steps"])
            meta["max_steps"] = max_steps
            question = program_instruction(program, row["input"], encrypted, spaced)
        else:
            meta.update({key: row[key] for key in ("pattern", "replacement", "input", "noop", "occurrences")})
            question = instruction(row["pattern"], row["replacement"], row["input"], encrypted, spaced)
        yield {"question": question, "answer": spell(expected_output(meta), spaced), "metadata": meta}


def dataset_entries(
    dataset: Dataset, task: str = "rewrite", cipher_seed: int = 0, spaced: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """The entries of every split of a (plain) dataset, in split order."""
    programs = dataset.spec.programs
    max_steps = programs.max_steps if programs is not None else DEFAULT_MAX_STEPS
    alphabet = dataset.spec.alphabet
    return {
        name: list(entries(split, name, task, cipher_seed, alphabet, spaced, max_steps))
        for name, split in dataset.splits.items()
    }


def expected_output(metadata: dict[str, Any]) -> str:
    """The correct final string of an entry, recomputed from its instruction (letters not spaced)."""
    try:
        if "program" in metadata:
            program = program_from_rows(metadata["program"])
            output = program.run(metadata["input"], int(metadata.get("max_steps", DEFAULT_MAX_STEPS)))
        else:
            output = apply_once(metadata["pattern"], metadata["replacement"], metadata["input"])
        if metadata.get("task", "rewrite") == "encrypted":
            output = output.translate(cipher_table(metadata["alphabet"], int(metadata["cipher_seed"])))
    except (KeyError, TypeError, AttributeError):
        raise UserError(
            "entry: its metadata does not describe a rewritelab instruction (pattern, replacement and input, "
            "or program and input); score entries made by rewritelab"
        ) from None
    return output


def extract_answer(answer: Any) -> str | None:
    """The answer string inside raw model output: a completion's text, or its chat messages (the last
    assistant message), without the wrapping our renderings add (the plain template's answer cue and
    leading space, a chat template's assistant header and end-of-turn tokens). None if there is none."""
    if isinstance(answer, list):  # a conversational completion, as TRL passes it to reward functions
        said = [m.get("content") for m in answer if isinstance(m, dict) and m.get("role") == "assistant"]
        answer = said[-1] if said else None
    if not isinstance(answer, str):
        return None
    text = _HEADER.sub("", answer.strip(), count=1)
    stripped = None
    while stripped != text:
        stripped = text
        for closer in _CLOSERS:
            text = text.removesuffix(closer).rstrip()
    text = text.strip()
    return text[len(ANSWER_CUE) :].strip() if text.startswith(ANSWER_CUE) else text


def score_answer(answer: Any, entry: dict[str, Any], shaped: bool = False) -> float:
    """1.0 if `answer` (raw model output, see `extract_answer`) is exactly the entry's correct output,
    else 0.0; with `shaped`, `edit_similarity` instead (still 1.0 only when exact)."""
    metadata = entry.get("metadata") if isinstance(entry, dict) else None
    if not isinstance(metadata, dict):
        raise UserError("entry: expected a dict with a 'metadata' dict (an entry made by rewritelab)")
    expected = expected_output(metadata)
    text = extract_answer(answer)
    if text is None:
        return 0.0
    written = unspell(text, metadata.get("letters") == "spaced")
    if written == expected:
        return 1.0
    return edit_similarity(written, expected) if shaped else 0.0


def edit_similarity(a: str, b: str) -> float:
    """1 − Levenshtein distance / the longer length, in [0, 1]: 1.0 only for equal strings."""
    if a == b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))
