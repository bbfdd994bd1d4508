"""Characters + four special tokens → compact integer arrays the model trains on.

A sequence is `pattern <sep> replacement <sep> input <ans> output <eos>`; the prompt is everything up to
and including `<ans>`. A Markov program dataset adds three tokens after the alphabet, `<rule>`, `<term>`
and `<step>`: each rule is `pattern <sep> replacement <rule>` (`<term>` in place of `<sep>` marks a
terminating rule), the rules in order, then `input <ans>`; the answer is `output <eos>` (`final`) or
the execution trace `s1 <step> s2 <step> ... <step> output <eos>` (`trace`: every intermediate string,
the last being the result). A whole split is encoded once into one flat `uint8` array plus offsets, so a
million examples cost ~140 MB rather than Python lists of ints, and batches are cut from it with numpy.
Encoding is vectorised: each example becomes one string with control characters standing in for the
specials, the strings are joined and mapped to ids through a per-code-point lookup table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from rewritelab.errors import UserError
from rewritelab.textfmt import quoted

PAD_ID, SEP_ID, ANS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<sep>", "<ans>", "<eos>")
PROGRAM_SPECIALS = ("<rule>", "<term>", "<step>")  # after the alphabet, in program vocabularies only
COLUMNS = ("pattern", "replacement", "input", "output")

# Control characters that stand in for the specials inside joined text (never in a valid alphabet).
_SEP, _ANS, _EOS = chr(SEP_ID), chr(ANS_ID), chr(EOS_ID)
_RULE, _TERM, _STEP = chr(4), chr(5), chr(6)
_CHUNK = 1 << 16  # examples joined at once: bounds the temporary string and code arrays
_INVALID = -1

LossOn = Literal["answer", "all"]


@dataclass(frozen=True)
class Encoded:
    """A split as one flat token array: example `i` is `tokens[offsets[i]:offsets[i + 1]]`."""

    tokens: np.ndarray  # uint8 when the vocabulary fits (it always does for letter alphabets)
    offsets: np.ndarray  # int64, N + 1
    prompt_len: np.ndarray  # int32, N: tokens up to and including <ans>

    def __len__(self) -> int:
        return len(self.prompt_len)

    @property
    def lengths(self) -> np.ndarray:
        """Full sequence length of every example (int64)."""
        return np.diff(self.offsets)

    def batch(
        self, indices: Sequence[int] | np.ndarray, loss_on: LossOn = "answer"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded next-token batch `(x, y, mask)`, each of shape B × (Tmax − 1).

        `x = seq[:-1]`, `y = seq[1:]` (int64, PAD_ID after the end); `mask` (float32) is 1 on the targets
        that count: the output characters and `<eos>` (target positions ≥ prompt_len − 1) for
        `loss_on="answer"`, every non-pad target for `loss_on="all"`.
        """
        if loss_on not in ("answer", "all"):
            raise ValueError(f"loss_on must be 'answer' or 'all', got {loss_on!r}")
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or len(idx) == 0:
            raise ValueError("batch needs a non-empty 1-d sequence of example indices")
        starts = self.offsets[idx]
        lengths = self.offsets[idx + 1] - starts
        cols = np.arange(int(lengths.max()))
        inside = cols < lengths[:, None]
        src = np.minimum(starts[:, None] + cols, len(self.tokens) - 1)
        seq = np.where(inside, self.tokens[src], PAD_ID).astype(np.int64)
        has_target = inside[:, 1:]  # position t predicts token t + 1, which exists
        x = torch.from_numpy(np.where(has_target, seq[:, :-1], PAD_ID))  # the last token is never an input
        y = torch.from_numpy(np.ascontiguousarray(seq[:, 1:]))
        if loss_on == "answer":
            has_target = has_target & (cols[:-1] >= self.prompt_len[idx, None] - 1)
        mask = torch.from_numpy(has_target.astype(np.float32))
        return x, y, mask

    def prompts(self, indices: Iterable[int]) -> list[list[int]]:
        """Prompt ids (through `<ans>`) of each example, the input to `GPT.generate`."""
        return [self.tokens[self.offsets[i] : self.offsets[i] + self.prompt_len[i]].tolist() for i in indices]

    def answers(self, indices: Iterable[int]) -> list[list[int]]:
        """Answer ids (output characters then `<eos>`): what a correct `GPT.generate` returns."""
        return [
            self.tokens[self.offsets[i] + self.prompt_len[i] : self.offsets[i + 1]].tolist() for i in indices
        ]


class Tokenizer:
    """Vocabulary: `<pad>`=0, `<sep>`=1, `<ans>`=2, `<eos>`=3, then the alphabet's characters in order,
    then (with an `answer` format: Markov program datasets) `<rule>`, `<term>`, `<step>`."""

    def __init__(self, alphabet: str, answer: Literal["final", "trace"] | None = None):
        _check_alphabet(alphabet)
        self.alphabet = alphabet
        self.answer = answer
        self.vocab = list(SPECIALS) + list(alphabet) + (list(PROGRAM_SPECIALS) if answer else [])
        self.vocab_size = len(self.vocab)
        self.step_id = len(SPECIALS) + len(alphabet) + 2 if answer else None
        self.dtype = np.dtype(np.uint8 if self.vocab_size <= 256 else np.uint16)
        self._narrow = max(map(ord, alphabet)) < 256  # latin-1 bytes: one byte per character
        size = 256 if self._narrow else max(map(ord, alphabet)) + 2  # last entry catches larger codes
        self._lut = np.full(size, _INVALID, dtype=np.int32)
        for i, ch in enumerate(alphabet, start=len(SPECIALS)):
            self._lut[ord(ch)] = i
        for special in (SEP_ID, ANS_ID, EOS_ID):  # joined sequences carry the specials' stand-ins
            self._lut[special] = special
        if answer:
            for j, stand_in in enumerate((_RULE, _TERM, _STEP)):
                self._lut[ord(stand_in)] = len(SPECIALS) + len(alphabet) + j

    @classmethod
    def for_data(cls, spec: Any) -> Tokenizer:
        """The tokenizer of a `DatasetSpec`: its alphabet, and its answer format for program datasets."""
        programs = spec.programs
        return cls(spec.alphabet, programs.answer if programs is not None else None)

    def encode_prompt(self, pattern: str, replacement: str, input: str) -> list[int]:
        """`pattern <sep> replacement <sep> input <ans>` as ids."""
        parts = {"pattern": pattern, "replacement": replacement, "input": input}
        for column, text in parts.items():
            self._check_text(text, column)
        return self._lookup(f"{pattern}{_SEP}{replacement}{_SEP}{input}{_ANS}").tolist()

    def encode_answer(self, output: str) -> list[int]:
        """`output <eos>` as ids (what generation should produce)."""
        self._check_text(output, "output")
        return self._lookup(output + _EOS).tolist()

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of `ids` up to the first `<eos>`; other specials are skipped."""
        if isinstance(ids, (torch.Tensor, np.ndarray)):
            ids = ids.tolist()
        chars = []
        for i in ids:
            if i == EOS_ID:
                break
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary (size {self.vocab_size})")
            if len(SPECIALS) <= i < len(SPECIALS) + len(self.alphabet):
                chars.append(self.vocab[i])
        return "".join(chars)

    def decode_steps(self, ids: Iterable[int]) -> list[str]:
        """A trace answer's strings (split at `<step>`, up to the first `<eos>`); the last is the result."""
        steps, current = [], []
        for i in ids.tolist() if isinstance(ids, (torch.Tensor, np.ndarray)) else ids:
            if i == EOS_ID:
                break
            if i == self.step_id:
                steps.append(self.decode(current))
                current = []
            else:
                current.append(i)
        return [*steps, self.decode(current)]

    def encode_split(self, split: Any) -> Encoded:
        """Encode every example of `split` (a `data.Split`, or a `data.ProgramSplit` when the tokenizer has
        an answer format) once; a character outside the alphabet is a `UserError`."""
        if self.answer is not None:
            return self._encode_programs(split)
        columns = [getattr(split, name) for name in COLUMNS]
        n = len(columns[0])
        if any(len(col) != n for col in columns):
            raise UserError("split: the pattern, replacement, input and output columns differ in length")
        lens = [np.fromiter(map(len, col), dtype=np.int64, count=n) for col in columns]
        prompt_len = (lens[0] + lens[1] + lens[2] + 3).astype(np.int32)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(prompt_len + lens[3] + 1, out=offsets[1:])
        tokens = np.empty(int(offsets[-1]), dtype=self.dtype)
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            chunk = [col[lo:hi] for col in columns]
            text = "".join(
                [f"{p}{_SEP}{r}{_SEP}{i}{_ANS}{o}{_EOS}" for p, r, i, o in zip(*chunk, strict=True)]
            )
            ids = self._lookup(text)
            if ids is None or not self._specials_match(ids, hi - lo):  # also catches stand-ins in a column
                self._raise_unknown(chunk, lo)
            tokens[offsets[lo] : offsets[hi]] = ids
        return Encoded(tokens=tokens, offsets=offsets, prompt_len=prompt_len)

    def _encode_programs(self, split: Any) -> Encoded:
        """Program splits: the rules, the input, then the final string or the trace (see the module)."""
        prompts = [
            "".join(f"{r.pattern}{_TERM if r.terminating else _SEP}{r.replacement}{_RULE}" for r in p.rules)
            + x
            for p, x in zip(split.program, split.input, strict=True)
        ]
        answers = split.output if self.answer == "final" else [_STEP.join(t) for t in split.trace]
        n = len(prompts)
        prompt_len = np.fromiter(map(len, prompts), dtype=np.int64, count=n).astype(np.int32) + 1
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(prompt_len + np.fromiter(map(len, answers), dtype=np.int64, count=n) + 1, out=offsets[1:])
        tokens = np.empty(int(offsets[-1]), dtype=self.dtype)
        for lo in range(0, n, _CHUNK):
            hi = min(lo + _CHUNK, n)
            text = "".join(
                [f"{p}{_ANS}{a}{_EOS}" for p, a in zip(prompts[lo:hi], answers[lo:hi], strict=True)]
            )
            ids = self._lookup(text)
            if (
                ids is None
                or np.count_nonzero(ids == ANS_ID) != hi - lo
                or np.count_nonzero(ids == EOS_ID) != hi - lo
            ):
                raise UserError(
                    f"split: examples {lo}-{hi - 1} hold a character outside the alphabet {self.alphabet!r}; "
                    "build the tokenizer from the dataset's alphabet (data.alphabet)"
                )
            tokens[offsets[lo] : offsets[hi]] = ids
        return Encoded(tokens=tokens, offsets=offsets, prompt_len=prompt_len)

    def _lookup(self, text: str) -> np.ndarray | None:
        """Ids of every character of `text` (specials' stand-ins included); None if one is unknown."""
        if self._narrow:
            try:
                codes = np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
            except UnicodeEncodeError:
                return None
        else:  # codes past the table land on its last entry, which is invalid
            codes = np.minimum(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), len(self._lut) - 1)
        ids = self._lut[codes]
        return None if (ids == _INVALID).any() else ids.astype(self.dtype)

    @staticmethod
    def _specials_match(ids: np.ndarray, n: int) -> bool:
        return (
            np.count_nonzero(ids == SEP_ID) == 2 * n
            and np.count_nonzero(ids == ANS_ID) == n
            and np.count_nonzero(ids == EOS_ID) == n
        )

    def _check_text(self, text: str, column: str, example: int | None = None) -> None:
        allowed = set(self.alphabet)
        for ch in text:
            if ch not in allowed:
                where = f"example {example} ({column})" if example is not None else column
                raise UserError(
                    f"{where}: character {ch!r} is not in the alphabet {self.alphabet!r}; "
                    "build the tokenizer from the dataset's alphabet (data.alphabet)"
                )

    def _raise_unknown(self, chunk: list, first: int) -> None:
        """Slow path, only on bad input: find and report the first offending character."""
        for k, row in enumerate(zip(*chunk, strict=True)):
            for column, text in zip(COLUMNS, row, strict=True):
                self._check_text(text, column, first + k)
        raise AssertionError("no offending character found")


def _check_alphabet(alphabet: str) -> None:
    if not isinstance(alphabet, str) or not alphabet:
        raise UserError(f"alphabet: expected a non-empty string of characters, got {quoted(alphabet)}")
    if len(set(alphabet)) != len(alphabet):
        dupes = sorted({ch for ch in alphabet if alphabet.count(ch) > 1})
        raise UserError(f"alphabet: characters must be distinct; {quoted(''.join(dupes))} repeat")
    bad = [ch for ch in alphabet if not ch.isprintable() or ch.isspace()]
    if bad:
        raise UserError(f"alphabet: {bad[0]!r} is whitespace or a control character; use visible characters")


def length_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, shuffle: bool = True
) -> list[np.ndarray]:
    """Split example indices into batches of similar length, so padding wastes little compute.

    With `shuffle`, indices are permuted, cut into chunks of 64 batches, sorted by length inside each
    chunk (stable), cut into batches, and the batch order is permuted: every batch is near-uniform in
    length while which examples meet, and in what order batches come, stays random. Without it, all
    examples are sorted by length (evaluation). Deterministic given `rng`; the last batch may be short.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    chunk = 64 * batch_size if shuffle else max(len(lengths), 1)
    batches = []
    for lo in range(0, len(order), chunk):
        part = order[lo : lo + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
