"""What GRPO costs on this machine: TRL's GRPOTrainer on SmolLM2-135M-Instruct with a LoRA adapter, the
reward from rewritelab's verifier, a few steps on the CPU.

The prompts come from rewritelab's reasoning-gym dataset (the training rules of
examples/configs/trl-smollm2.yaml: encrypted rewriting, spaced letters, chat template); each step
samples `--generations` completions for each of `--prompts` prompts (up to twice the longest answer in
tokens), scores them with the strict reward and takes one optimizer step on the adapter. Prints seconds
per step, completion tokens per second and the mean reward of each step; from the base model the reward
is ~0 (the task needs SFT first), so this measures cost, not learning.

    .venv/bin/python benchmarks/grpo_smoke.py [--steps 3] [--prompts 2] [--generations 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

from _common import set_threads
from rewritelab.config import to_dict
from rewritelab.integrations.gym import RewriteTaskConfig, RewriteTaskDataset
from rewritelab.integrations.trl import (
    grpo_dataset,
    lora_config,
    reward_function,
    trainable_model,
    trainer_args,
)
from rewritelab.lm import load_lm_run_config, load_model, load_tokenizer

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "trl-smollm2.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIG), help="an lm: run config")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import transformers
    from trl import GRPOConfig, GRPOTrainer

    threads = set_threads(args.threads)
    cfg = load_lm_run_config(args.config)
    started = time.perf_counter()
    model = trainable_model(load_model(cfg.lm, torch.device("cpu")))
    tokenizer = load_tokenizer(cfg.lm)
    print(f"model {cfg.lm.model} loaded in {time.perf_counter() - started:.0f} s")
    task = cfg.lm.task
    batch = args.prompts * args.generations
    prompts = RewriteTaskDataset(RewriteTaskConfig(
        data=to_dict(cfg.data), split="train", task=task.kind, cipher_seed=task.cipher_seed,
        letters=cfg.lm.letters, seed=0, size=args.steps * args.prompts,
    ))  # fmt: skip
    longest = max(len(e["answer"]) for e in prompts)
    seconds: list[float] = []

    class StepTimer(transformers.TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            seconds.append(time.perf_counter() - self.start)

    with TemporaryDirectory() as out:
        trainer = GRPOTrainer(
            model=model, reward_funcs=reward_function(), train_dataset=grpo_dataset(prompts),
            args=trainer_args(
                GRPOConfig, cfg.train, out, max_steps=args.steps, per_device_train_batch_size=batch,
                gradient_accumulation_steps=1, num_generations=args.generations,
                max_completion_length=2 * longest + 4, warmup_steps=0, disable_tqdm=True,
            ),
            processing_class=tokenizer, callbacks=[StepTimer()],
            peft_config=lora_config(model, cfg.lm.lora.rank, cfg.lm.lora.alpha, cfg.lm.lora.dropout),
        )  # fmt: skip
        trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    tokens = [h.get("completions/mean_length", 0.0) * batch for h in logs]
    print(f"{args.steps} GRPO steps of {args.prompts} prompts x {args.generations} completions "
          f"(<= {2 * longest + 4} tokens), LoRA rank {cfg.lm.lora.rank}, {threads} threads")  # fmt: skip
    print(f"{'step':>4} {'seconds':>8} {'tokens':>7} {'tok/s':>6} {'reward':>7}")
    for i, (s, h, n) in enumerate(zip(seconds, logs, tokens, strict=False), start=1):
        print(f"{i:4d} {s:8.1f} {n:7.0f} {n / s:6.1f} {h['reward']:7.3f}")
    mean = sum(seconds) / len(seconds)
    print(f"mean {mean:.1f} s per step: 100 steps ~ {100 * mean / 3600:.1f} h on this CPU")


if __name__ == "__main__":
    main()
