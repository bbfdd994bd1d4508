"""rewritelab examples as a procedural dataset in reasoning-gym's protocol.

`RewriteTaskDataset(RewriteTaskConfig(...))[i]` is an entry `{"question", "answer", "metadata"}` (see
`rewritelab.lm.verify`) that depends only on (config, seed, i): the instruction pool (training and
held-out rules or programs) is the one `generate_dataset` draws from `data:` (its own seed), and example
i comes from chunk i // CHUNK, generated with a generator seeded by (seed, split, chunk). Any index is
valid, so the dataset is endless; `size` is what `len` and iteration use. The held-out splits draw only
held-out instructions, which never occur in the training pool, whatever the seeds.

With the `reasoning-gym` package installed (`pip install 'rewritelab[gym]'`), importing this module
registers the dataset as "rewritelab", so `reasoning_gym.create_dataset("rewritelab", split=..., data=...)`
and reasoning-gym's composite datasets work; scores come from the verifier (strict unless
`shaped_reward`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from rewritelab.config import from_dict
from rewritelab.data import Dataset, DatasetSpec, generate_dataset, sample_examples
from rewritelab.errors import UserError
from rewritelab.lm import entries, score_answer

try:  # the registry's base class when reasoning-gym is installed: then its factory accepts the dataset
    from reasoning_gym.dataset import ProceduralDataset as _Base
except ImportError:  # the protocol alone: the same class works with anything that reads entries
    _Base = object  # type: ignore[assignment,misc]

NAME = "rewritelab"
CHUNK = 64  # examples generated together (the no-op share is exact per chunk)
# split -> (instruction pool in the dataset's rule table, test settings, stream id)
SPLITS = {"train": ("train", False, 0), "test_seen": ("train", True, 1), "test_unseen": ("heldout", True, 2),
          "test_unseen_strict": ("strict", True, 3), "validation": ("validation", True, 4)}  # fmt: skip


@dataclass
class RewriteTaskConfig:
    """`data`: a rewritelab `data:` section (uniform rule frequencies); `split`: which instructions
    (train and test_seen: the training pool, test_unseen: the held-out pool, test_unseen_strict: the
    strict pool of a program family, validation: the validation pool); `task`, `cipher_seed`, `letters`:
    as the `lm:` section's."""

    data: dict[str, Any] = field(default_factory=dict)
    split: str = "train"
    task: str = "rewrite"
    cipher_seed: int = 0
    letters: str = "joined"
    shaped_reward: bool = False
    seed: int | None = None
    size: int = 500

    def spec(self) -> DatasetSpec:
        return from_dict(DatasetSpec, self.data, "data")

    def validate(self) -> None:
        spec = self.spec()
        if self.split not in SPLITS:
            raise UserError(f"split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.split == "test_unseen_strict" and not (spec.programs and spec.programs.strict):
            raise UserError("split: test_unseen_strict needs a program family with strict > 0")
        if self.split == "validation" and not spec.validation_rules:
            raise UserError("split: validation needs data.validation_rules > 0")
        if spec.rule_distribution != "uniform":
            raise UserError("data.rule_distribution: the reasoning-gym dataset draws instructions uniformly")
        if spec.programs is not None and spec.programs.answer != "final":
            raise UserError("data.family.answer: text tasks ask for the final string; use answer: final")
        if self.task not in ("rewrite", "encrypted") or self.letters not in ("joined", "spaced"):
            raise UserError("task: rewrite or encrypted, letters: joined or spaced")
        if self.size < 1 or (self.seed is not None and self.seed < 0) or self.cipher_seed < 0:
            raise UserError("size must be >= 1, seed and cipher_seed >= 0")


class RewriteTaskDataset(_Base):
    """Entries of one split of a rewritelab task, reproducible from (seed, index); see the module doc."""

    def __init__(self, config: RewriteTaskConfig):
        config.validate()
        self.config, self.size = config, config.size
        self.seed = config.seed if config.seed is not None else 0
        self.spec = config.spec()
        self._chunk = lru_cache(maxsize=4)(self._make_chunk)

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        return (self[i] for i in range(self.size))

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if idx < 0:
            raise IndexError(f"index {idx}: examples are numbered from 0")
        chunk, offset = divmod(idx, CHUNK)
        entry = self._chunk(chunk)[offset]
        return {**entry, "metadata": dict(entry["metadata"])}  # a caller may annotate its copy

    def score_answer(self, answer: Any, entry: dict[str, Any]) -> float:
        return score_answer(answer, entry, shaped=self.config.shaped_reward)

    def pool(self) -> Dataset:
        """The instruction pools: `generate_dataset` of the data section with one example per rule (the
        rule draws do not depend on the budget, so the pools are those of the full dataset)."""
        return _pools(self.spec)

    def _make_chunk(self, chunk: int) -> list[dict[str, Any]]:
        pool_name, test, stream = SPLITS[self.config.split]
        rules = self.pool().rules
        table = rules.subset(np.flatnonzero(np.asarray(rules.split) == pool_name))
        rng = np.random.default_rng([self.seed, stream, chunk])
        split = sample_examples(self.spec, table, CHUNK, rng, test)
        c = self.config
        programs = self.spec.programs
        return list(
            entries(
                split, c.split, c.task, c.cipher_seed, self.spec.alphabet, c.letters == "spaced",
                programs.max_steps if programs else 0, start=chunk * CHUNK,
            )
        )  # fmt: skip


@lru_cache(maxsize=8)
def _pools(spec: DatasetSpec) -> Dataset:
    small = dataclasses.replace(
        spec, budget=None, examples_per_rule=1, test_examples_per_rule=1, validation_examples_per_rule=1
    )
    return generate_dataset(small)


def register() -> bool:
    """Register the dataset with reasoning-gym (once); False when reasoning-gym is not installed."""
    if _Base is object:
        return False
    from reasoning_gym.factory import DATASETS, register_dataset

    if NAME not in DATASETS:
        register_dataset(NAME, RewriteTaskDataset, RewriteTaskConfig)
    return True


register()
