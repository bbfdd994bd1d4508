"""What runs will cost before they start: optimizer steps, tokens and an estimated wall time.

Steps follow from the config (`count_steps`); tokens from the mean sequence length of a small sample of
the run's own data. Seconds per step come from one of two sources, and the result says which:
- `timed`: a few training steps of the run's model on its data, on this machine, at the threads each run
  will get (a second or two per distinct model and sequence shape; `sweep --dry-run`);
- `measured`: the throughput the published CPU runs recorded (`MEASURED`; `rewritelab presets`, which
  must stay instant, and LoRA runs, whose pretrained model takes longer to load than an estimate may).
Evaluation during and after training is added as forward passes at a third of a training example's cost.
Either way it is an estimate: other load on the machine changes it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rewritelab.config import to_dict
from rewritelab.data import generate_dataset
from rewritelab.errors import UserError
from rewritelab.lm import LMRunConfig
from rewritelab.run import (
    Dist,
    TrainingLoss,
    autocast_for,
    build_model,
    count_steps,
    eval_steps,
    make_optimizer,
    resolve_device,
    resolved_dtype,
    train_step,
)
from rewritelab.tokenizer import Tokenizer

# Throughput at one CPU thread per run as the published CPU runs (docs/results/) recorded it, learning-curve
# evaluations included: the median over a sweep's runs, run two at a time on a 2-core machine.
MEASURED_TOKENS_PER_S = {  # by model and optimizer (Muon's Newton-Schulz costs extra per step)
    ("cpu-base", "adamw"): 12_900.0,  # e1-cpu-v2: 18 runs of the 4 x 128 model, fp32
    ("cpu-base", "muon"): 14_900.0,  # e1-cpu-v3: 18 runs, fp32 with bf16 Newton-Schulz, another day's VM
}
MEASURED_LM_S_PER_EXAMPLE = {  # by model and the frozen base's precision (`dtype: auto` resolved)
    ("smollm2-135m-instruct", "float32"): 0.50,  # e6-cpu v1: 4.0 s per LoRA step of 8, an AVX2-only VM
    ("smollm2-135m-instruct", "bfloat16"): 0.095,  # calibration-v3/e6-bf16: 228 s for 300 steps of 8
}
TIMED_S = 1.0  # how long to time the steps of one model and shape
TIMED_TOKENS = 4096  # tokens per timed step at most; a larger batch is timed in part and scaled
SAMPLE_RULES, SAMPLE_EXAMPLES = 64, 512  # the sample whose sequences give the mean length


@dataclass(frozen=True)
class RunCost:
    steps: int
    tokens: int | None  # None for LoRA runs (their tokens are the pretrained model's)
    seconds: float | None  # None: no estimate (see the Estimate's note)


def sample_spec(spec: Any, tests: tuple[int, int] = (32, 4)) -> Any:
    """The run's data section shrunk to a few rules and examples (at most `tests` = held-out rules and
    examples of each): the same sequence shapes, in a fraction of a second."""
    return dataclasses.replace(
        spec,
        num_rules=min(spec.num_rules, SAMPLE_RULES),
        budget=SAMPLE_EXAMPLES,
        examples_per_rule=None,
        test_rules=min(spec.test_rules, tests[0]),
        test_examples_per_rule=min(spec.test_examples_per_rule, tests[1]),
        validation_rules=min(spec.validation_rules, tests[0]),
        validation_examples_per_rule=min(spec.validation_examples_per_rule, tests[1]),
    )


class Costs:
    """Estimates for many runs, sharing the samples and timings of runs of the same shape."""

    def __init__(self, source: str, threads: int = 1):
        if source not in ("timed", "measured"):
            raise ValueError(source)
        self.source, self.threads = source, threads
        self._samples: dict[str, tuple[Any, int]] = {}
        self._token_s: dict[str, float | None] = {}  # seconds per training token
        self.notes: set[str] = set()

    def run(self, cfg: Any) -> RunCost:
        steps = count_steps(cfg.data.train_examples, cfg.train)
        if isinstance(cfg, LMRunConfig):
            dtype = resolved_dtype(cfg.train.dtype, cfg.train.device, frozen_base=True)
            key = (cfg.lm.model, dtype)
            per_example = MEASURED_LM_S_PER_EXAMPLE.get(key) if cfg.train.device == "cpu" else None
            if per_example is None:
                self.notes.add(f"no measured throughput for {cfg.lm.model} on {cfg.train.device}")
                return RunCost(steps, None, None)
            self.notes.add(
                f"{per_example} s per example at 1 thread for LoRA on {cfg.lm.model} ({dtype} base)"
            )
            tests = 2 * cfg.data.test_rules * cfg.data.test_examples_per_rule  # scored at a third of the cost
            return RunCost(steps, None, (steps * cfg.train.batch_size + tests / 3) * per_example)
        key = (str(cfg.model.preset), cfg.train.optimizer)
        rate = MEASURED_TOKENS_PER_S.get(key) if cfg.train.device == "cpu" else None
        if self.source == "measured" and rate is None:  # nothing to scale: not even the data is sampled
            self.notes.add(f"no measured throughput for the model {cfg.model.preset or 'of this size'} on "
                           f"{cfg.train.device}")  # fmt: skip
            return RunCost(steps, None, None)
        enc, tests = self._sample(cfg)
        mean_len = float(enc.lengths.mean())
        tokens = int(round(steps * cfg.train.batch_size * mean_len))
        if self.source == "measured":
            model = f"model {cfg.model.preset} with {cfg.train.optimizer}"
            self.notes.add(f"{rate:,.0f} tokens/s per run at 1 thread for {model}")
            step_s = cfg.train.batch_size * mean_len / rate
        else:
            step_s = self._step_seconds(cfg, mean_len)
        if step_s is None:
            return RunCost(steps, tokens, None)
        curve = (
            cfg.train.eval_examples * 2 + cfg.data.validation_rules * cfg.data.validation_examples_per_rule
        )
        evals = len(eval_steps(steps, cfg.train)) * curve + tests
        return RunCost(steps, tokens, steps * step_s + evals * step_s / cfg.train.batch_size / 3)

    def _sample(self, cfg: Any) -> tuple[Any, int]:
        """The encoded training split of a sample of the run's data, and the run's final test examples."""
        spec = sample_spec(cfg.data)
        key = json.dumps(to_dict(spec), sort_keys=True)
        if key not in self._samples:
            try:
                dataset = generate_dataset(spec)
            except UserError:  # e.g. too few held-out programs reach the longer executions
                dataset = generate_dataset(sample_spec(cfg.data, tests=(256, 10)))
            per_split = cfg.data.test_rules * cfg.data.test_examples_per_rule
            if cfg.train.test_examples is not None:
                per_split = min(per_split, cfg.train.test_examples)
            enc = Tokenizer.for_data(cfg.data).encode_split(dataset.splits["train"])
            self._samples[key] = (enc, (len(dataset.splits) - 1) * per_split)  # every split but train
        return self._samples[key]

    def _step_seconds(self, cfg: Any, mean_len: float) -> float | None:
        """Seconds per step timed here, once per model and batch, scaled by the sequence length."""
        train = cfg.train
        shape = [to_dict(cfg.model), train.batch_size, train.dtype, train.device, train.loss_on]
        key = json.dumps(shape, sort_keys=True)
        if key not in self._token_s:
            self._token_s[key] = self._time(cfg, self._sample(cfg)[0])
        per_token = self._token_s[key]
        return None if per_token is None else per_token * cfg.train.batch_size * mean_len

    def _time(self, cfg: Any, enc: Any) -> float | None:
        """Seconds per training token: a warm-up step, then steps until `TIMED_S` has passed (at least
        two), of the run's batch or, beyond `TIMED_TOKENS`, of part of it."""
        try:
            device = resolve_device(cfg.train.device)
        except UserError:
            self.notes.add(f"train.device {cfg.train.device} is not available here")
            return None
        tokenizer = Tokenizer.for_data(cfg.data)
        batch = min(cfg.train.batch_size, max(1, int(TIMED_TOKENS // enc.lengths.mean())), len(enc))
        timed = dataclasses.replace(cfg.train, batch_size=batch, grad_accum=1)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            model = build_model(cfg, tokenizer.vocab_size, int(enc.lengths.max()), device)
            net, optimizer = TrainingLoss(model), make_optimizer(model, timed)
            amp = autocast_for(device, cfg.train.dtype)
            rng = np.random.default_rng(0)
            seconds: list[float] = []
            start = time.perf_counter()
            while True:
                tick = time.perf_counter()
                indices = rng.choice(len(enc), batch, replace=False)
                train_step(net, enc, indices, timed, Dist(), device, amp)
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds.append((time.perf_counter() - tick) / int(enc.lengths[indices].sum()))
                elapsed = time.perf_counter() - start
                if (len(seconds) >= 3 and elapsed >= TIMED_S) or (
                    len(seconds) >= 2 and elapsed >= 3 * TIMED_S
                ):
                    break
        finally:
            torch.set_num_threads(before)
        self.notes.add("seconds per step timed here over a few training steps of each model and shape")
        return float(np.median(seconds[1:]))  # the first step warms up


def wall_seconds(durations: Sequence[float], workers: int) -> float:
    """How long `durations` take on `workers` slots, longest first onto the least loaded slot (the
    local backend starts runs in order as slots free up; this is close for runs of similar length)."""
    slots = [0.0] * max(1, workers)
    for d in sorted(durations, reverse=True):
        slots[slots.index(min(slots))] += d
    return max(slots)
