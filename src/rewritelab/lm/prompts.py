"""Examples as text for a pretrained model: the instruction sentence (of a rule or a Markov program), the
encrypted-rewriting task, and the prompt / completion records that TRL's SFT trainer and similar tools read.

Pure text (no tokenizer): `rewritelab generate --format instruction|chat` uses it without transformers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from rewritelab.data import Dataset, MarkovProgram, Split

ANSWER_CUE = "Answer:"  # ends a plain prompt; the answer follows after one space


def spell(text: str, spaced: bool) -> str:
    """A string as the model reads and writes it: as is, or one letter per word ("a b c"), which a BPE
    vocabulary encodes one token per letter — so a letter substitution is a map between tokens instead
    of between whatever multi-letter pieces the merges happen to form."""
    return " ".join(text) if spaced else text


def unspell(written: str, spaced: bool) -> str:
    """The inverse of `spell` on what a model wrote (spaces between letters dropped)."""
    return written.replace(" ", "") if spaced else written


def instruction(pattern: str, replacement: str, text: str, encrypted: bool, spaced: bool = False) -> str:
    """The instruction sentence of one example (the user message of a chat rendering).

    Short on purpose: on a CPU the prompt's tokens are most of a step's cost.
    """
    pattern, replacement, text = (spell(s, spaced) for s in (pattern, replacement, text))
    sentence = f'Replace the first occurrence of "{pattern}" in "{text}" with "{replacement}".'
    return sentence + (" Then encrypt the result." if encrypted else "")


def program_instruction(program: MarkovProgram, text: str, encrypted: bool, spaced: bool = False) -> str:
    """The instruction of a Markov-program example: its rules in the ruleset format (docs/markov.md), one
    per line, and how they run."""
    rules = "\n".join(
        f"{spell(r.pattern, spaced)} -> {'.' if r.terminating else ''}{spell(r.replacement, spaced)}"
        for r in program.rules
    )
    sentence = (
        f'Run this Markov algorithm on "{spell(text, spaced)}": repeatedly apply the first rule whose left '
        "side occurs, at its leftmost occurrence, until no rule applies or a rule marked with a period "
        f"fires. Write the final string.\n{rules}"
    )
    return sentence + (" Then encrypt the result." if encrypted else "")


def plain_prompt(message: str) -> str:
    """The `plain` template: the instruction, a newline and the answer cue."""
    return f"{message}\n{ANSWER_CUE}"


def plain_answer(output: str) -> str:
    """What follows a plain prompt: a space (BPE vocabularies mark word starts with it), then the answer."""
    return f" {output}"


def cipher_table(alphabet: str, seed: int) -> dict[int, str]:
    """The substitution of the encrypted task: a permutation of `alphabet` drawn from `seed`, as a
    `str.translate` table. A derangement is not forced: a letter may map to itself."""
    perm = np.random.default_rng([seed, 0x0C1F]).permutation(len(alphabet))
    return {ord(a): alphabet[int(j)] for a, j in zip(alphabet, perm, strict=True)}


def encipher_split(split: Split, table: dict[int, str]) -> Split:
    """The split with every output enciphered (prompts, no-op flags and breakdown columns unchanged)."""
    return dataclasses.replace(split, output=[o.translate(table) for o in split.output])


def task_dataset(dataset: Dataset, kind: str, cipher_seed: int) -> Dataset:
    """The dataset of a task: unchanged for `rewrite`, outputs enciphered for `encrypted`."""
    if kind == "rewrite":
        return dataset
    table = cipher_table(dataset.spec.alphabet, cipher_seed)
    splits = {name: encipher_split(split, table) for name, split in dataset.splits.items()}
    return dataclasses.replace(dataset, splits=splits)


def sft_records(split: Split, style: str, encrypted: bool, spaced: bool = False) -> Iterator[dict[str, Any]]:
    """One record per example in TRL's prompt-completion format: text (style `instruction`, the plain
    template) or one chat message each (style `chat`: `{"prompt": [user], "completion": [assistant]}`,
    the conversational form). Prompt and completion stay apart so a trainer (TRL's `SFTTrainer` by
    default) puts the loss on the completion only, whatever the tokenizer's chat template."""
    for p, r, x, y in zip(split.pattern, split.replacement, split.input, split.output, strict=True):
        message, y = instruction(p, r, x, encrypted, spaced), spell(y, spaced)
        if style == "chat":
            yield {
                "prompt": [{"role": "user", "content": message}],
                "completion": [{"role": "assistant", "content": y}],
            }
        else:
            yield {"prompt": plain_prompt(message), "completion": plain_answer(y)}
