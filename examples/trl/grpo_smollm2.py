"""GRPO on SmolLM2-135M-Instruct with TRL's GRPOTrainer: prompts from rewritelab's reasoning-gym dataset,
rewards from the verifier (1.0 for exactly the right answer; --shaped for edit similarity).

    python examples/trl/grpo_smollm2.py examples/configs/trl-smollm2.yaml --out runs/trl-grpo --steps 20

The prompts are an endless stream of training-rule examples (`rewritelab.integrations.gym`, seed 0); the
LoRA adapter and optimiser settings come from the config, as for `rewritelab train`. Start from an SFT'd
adapter for a useful signal: from the base model almost every reward is 0 (benchmarks/grpo_smoke.py
measures the cost per step on a CPU; RL at any useful scale needs a GPU). Needs rewritelab[trl,gym,lm].
"""

from __future__ import annotations

import argparse

from common import load
from trl import GRPOConfig, GRPOTrainer

from rewritelab.config import to_dict
from rewritelab.integrations.gym import RewriteTaskConfig, RewriteTaskDataset
from rewritelab.integrations.trl import (
    greedy_accuracy,
    grpo_dataset,
    lora_config,
    reward_function,
    trainer_args,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="an lm: run config (examples/configs/trl-smollm2.yaml)")
    parser.add_argument("--out", required=True, help="where TRL writes its output and the adapter")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps")
    parser.add_argument("--generations", type=int, default=4, help="completions per prompt (the GRPO group)")
    parser.add_argument("--shaped", action="store_true", help="edit-similarity reward instead of exact match")
    parser.add_argument("--eval", type=int, default=50, help="held-out examples to score (0: none)")
    args = parser.parse_args()

    cfg, model, tokenizer, entries = load(args.config)
    task = cfg.lm.task
    prompts = RewriteTaskDataset(RewriteTaskConfig(
        data=to_dict(cfg.data), split="train", task=task.kind, cipher_seed=task.cipher_seed,
        letters=cfg.lm.letters, seed=0, size=args.steps * cfg.train.batch_size,
    ))  # fmt: skip
    longest = max(len(e["answer"]) for e in entries["train"])
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_function(shaped=args.shaped),
        args=trainer_args(GRPOConfig, cfg.train, args.out, max_steps=args.steps,
                          num_generations=args.generations, max_completion_length=2 * longest + 4),
        train_dataset=grpo_dataset(prompts),
        processing_class=tokenizer,
        peft_config=lora_config(model, cfg.lm.lora.rank, cfg.lm.lora.alpha, cfg.lm.lora.dropout),
    )  # fmt: skip
    trainer.train()
    trainer.save_model(args.out)
    rewards = [round(h["reward"], 3) for h in trainer.state.log_history if "reward" in h]
    print(f"mean reward per step: {rewards}")
    if args.eval:
        score = greedy_accuracy(trainer.model, tokenizer, entries["test_unseen"][: args.eval])
        print(f"test_unseen: exact match {score:.3f}")


if __name__ == "__main__":
    main()
