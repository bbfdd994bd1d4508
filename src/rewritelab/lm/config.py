"""The configuration of a pretrained-model run: the `lm:` section, and the run config that holds it.

A run config with an `lm:` section (instead of `model:`) fine-tunes a pretrained Hugging Face causal LM
with LoRA; its `data:` and `train:` sections are the same as a from-scratch run's, so sweeps, the results
store and reports read both kinds alike.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from rewritelab.config import (
    FieldError,
    apply_overrides,
    check_seed,
    from_dict,
    is_setting_name,
    load_yaml,
    unknown_key_error,
)
from rewritelab.data import DatasetSpec
from rewritelab.errors import UserError
from rewritelab.run import TrainConfig


@dataclass
class LoraSettings:
    """LoRA adapter shape. `target_modules: null` takes peft's default for the model's architecture
    (e.g. q_proj/v_proj for Llama, c_attn for GPT-2)."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] | None = None

    def validate(self) -> None:
        if self.rank < 1:
            raise FieldError("rank", f"must be at least 1, got {self.rank}")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise FieldError("alpha", f"must be a positive number, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise FieldError("dropout", f"must be in [0, 1), got {self.dropout}")
        if self.target_modules is not None and not self.target_modules:
            raise FieldError("target_modules", "must name at least one module (or be null for the default)")


@dataclass
class TaskSettings:
    """What the model must write. `rewrite`: the rewritten input. `encrypted`: the rewritten input passed
    through a fixed letter substitution (a permutation of the alphabet drawn from `cipher_seed`) that the
    prompt never shows, so the model must infer it from training. The paper names "encrypted rewriting"
    without publishing its cipher: this substitution is rewritelab's interpretation."""

    kind: Literal["rewrite", "encrypted"] = "rewrite"
    cipher_seed: int = 0

    def validate(self) -> None:
        check_seed("cipher_seed", self.cipher_seed)


Letters = Literal["joined", "spaced"]
LETTERS: tuple[str, ...] = get_args(Letters)


@dataclass
class LMConfig:
    """A pretrained causal LM and how it is prompted and adapted.

    `model`: a local directory (a `save_pretrained` folder, or one holding `gguf_file`), a built-in name
    (see `rewritelab.lm.BUILTIN_MODELS`), or a hub id `org/name` where the machine is online.
    `template`: `plain` renders an instruction sentence followed by `Answer:`; `chat` wraps the same
    sentence as a user message in the tokenizer's chat template; `auto` picks `chat` when the tokenizer
    has a chat template. `letters`: `joined` writes strings as they are, `spaced` one letter per word
    ("a b c"), so a BPE tokenizer gives one token per letter (see `lm.prompts.spell`).
    """

    model: str
    gguf_file: str | None = None
    template: Literal["auto", "plain", "chat"] = "auto"
    letters: Letters = "joined"
    task: TaskSettings = field(default_factory=TaskSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)

    @property
    def spaced(self) -> bool:
        return self.letters == "spaced"

    def validate(self) -> None:
        if not self.model:
            raise FieldError("model", "must name a model directory, a built-in model or a hub id")


@dataclass
class LMRunConfig:
    """One LoRA fine-tuning run: what data, which pretrained model, how to train."""

    data: DatasetSpec
    lm: LMConfig
    train: TrainConfig


SECTIONS = ("data", "lm", "train")


def lm_run_config_from_dict(raw: dict[str, Any]) -> LMRunConfig:
    """Plain data → `LMRunConfig`; unknown sections or keys name the bad field."""
    if not isinstance(raw, dict):
        raise UserError("run config: expected a mapping with data:, lm:, train: sections")
    for key in raw:
        if key not in SECTIONS and not is_setting_name(key):
            raise unknown_key_error("run config", key, SECTIONS)
        if key not in SECTIONS:
            hint = (
                "an lm: run has no model: section (the model is lm.model)"
                if key == "model"
                else (
                    f"did you mean {close[0]!r}?"
                    if (close := difflib.get_close_matches(str(key), SECTIONS, n=1))
                    else "expected data, lm, train"
                )
            )
            raise UserError(f"{key}: unknown section ({hint})")
    cfg = LMRunConfig(
        data=from_dict(DatasetSpec, raw.get("data"), "data"),
        lm=from_dict(LMConfig, raw.get("lm"), "lm"),
        train=from_dict(TrainConfig, raw.get("train"), "train"),
    )
    if cfg.train.loss_on != "answer":
        raise UserError("train.loss_on: an lm: run trains on the answer only; remove the setting")
    if cfg.train.optimizer != "adamw":
        raise UserError("train.optimizer: an lm: run trains its LoRA adapter with adamw; remove the setting")
    return cfg


def load_lm_run_config(
    source: str | os.PathLike | dict[str, Any], overrides: list[str] | None = None
) -> LMRunConfig:
    """A YAML file (or parsed dict) plus `--set section.key=value` overrides → `LMRunConfig`."""
    raw = source if isinstance(source, dict) else load_yaml(source)
    return lm_run_config_from_dict(apply_overrides(raw, overrides))
