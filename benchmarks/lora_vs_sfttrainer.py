"""Our LoRA loop against TRL's SFTTrainer: same data, model, LoRA settings and budget.

Both fine-tune the same pretrained model (SmolLM2-135M-Instruct by default, de-quantized once from the
built-in GGUF and saved as a model directory both load) with the same LoRA adapter (rank, alpha, targets:
`lm.lora_config`) on the same training examples — examples/configs/trl-smollm2.yaml, encrypted rewriting,
chat template, spaced letters — for the same optimizer steps, global batch, learning rate, warmup and
schedule, AdamW betas, weight decay and clipping (`integrations.trl.trainer_args`), fp32 on the CPU:

  ours  rewritelab's `lm:` loop (`run.train_model` with the `lm:` kind): length-grouped batches, the
        output head only at answer positions
  trl   `trl.SFTTrainer` on the chat export (`generate --format chat`), loss on the completion only

Reported: seconds per optimizer step (the loop's own time, model loading and evaluation excluded) and
greedy exact match after the budget on the same test examples, both scored by `greedy_accuracy` (the
verifier). Runs one after the other, so load from other processes may favour either: repeat it.

    .venv/bin/python benchmarks/lora_vs_sfttrainer.py [--steps 4] [--eval 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from _common import set_threads
from rewritelab.data import generate_dataset
from rewritelab.integrations.trl import greedy_accuracy, lora_config, trainable_model, trainer_args
from rewritelab.lm import (
    LM,
    dataset_entries,
    load_lm_run_config,
    load_model,
    load_tokenizer,
    sft_records,
    task_dataset,
)
from rewritelab.run import train_model

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "trl-smollm2.yaml"


def base_model_dir(cfg, out: Path) -> Path:
    """The pretrained model as a float32 model directory (a GGUF file is de-quantized once)."""
    model, tokenizer = load_model(cfg.lm, torch.device("cpu")), load_tokenizer(cfg.lm)
    trainable_model(model).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def ours(cfg, run_dir: Path, entries, n_eval: int) -> dict:
    s = train_model(LM, cfg, run_dir, None, "none")  # the trained model and its tokenizer
    last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    steps = last["step"]
    return {
        "seconds_per_step": last["seconds"] / steps, "steps": steps, "last_loss": last["loss"],
        **{split: greedy_accuracy(s.model, s.tokenizer, entries[split][:n_eval]) for split in EVAL},
    }  # fmt: skip


def trl_sft(cfg, base: Path, out: Path, entries, n_eval: int) -> dict:
    import datasets
    import transformers
    from trl import SFTConfig, SFTTrainer

    task = cfg.lm.task
    plain = generate_dataset(cfg.data)
    train = task_dataset(plain, task.kind, task.cipher_seed).splits["train"]
    records = list(sft_records(train, "chat", encrypted=task.kind == "encrypted", spaced=cfg.lm.spaced))
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    lora = cfg.lm.lora
    seconds: list[float] = []

    class StepTimer(transformers.TrainerCallback):
        """Each optimizer step's time, as `ours` counts it (the loop, not loading or evaluation)."""

        def on_step_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            seconds.append(time.perf_counter() - self.start)

    trainer = SFTTrainer(
        model=model, args=trainer_args(SFTConfig, cfg.train, str(out), disable_tqdm=True),
        train_dataset=datasets.Dataset.from_list(records), processing_class=tokenizer,
        peft_config=lora_config(model, lora.rank, lora.alpha, lora.dropout, lora.target_modules),
        callbacks=[StepTimer()],
    )  # fmt: skip
    torch.manual_seed(cfg.train.seed)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "seconds_per_step": sum(seconds) / len(seconds), "steps": len(seconds),
        "last_loss": losses[-1],
        **{split: greedy_accuracy(trainer.model, tokenizer, entries[split][:n_eval]) for split in EVAL},
    }  # fmt: skip


EVAL = ("test_seen", "test_unseen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIG), help="an lm: run config")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps for each contender")
    parser.add_argument("--eval", type=int, default=16, help="test examples scored per split")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    warmup = max(1, args.steps // 4)
    overrides = [f"train.max_steps={args.steps}", f"train.warmup_steps={warmup}", f"train.threads={threads}",
                 "train.progress=none", "train.eval_every=0"]  # fmt: skip
    cfg = load_lm_run_config(args.config, overrides)
    task = cfg.lm.task
    entries = dataset_entries(generate_dataset(cfg.data), task.kind, task.cipher_seed, cfg.lm.spaced)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        base = base_model_dir(cfg, Path(tmp) / "base")
        print(f"model {cfg.lm.model} de-quantized and saved in {time.perf_counter() - started:.0f} s")
        cfg_local = load_lm_run_config(args.config, [*overrides, f"lm.model={base}"])
        results = {
            "ours": ours(cfg_local, Path(tmp) / "ours", entries, args.eval),
            "trl": trl_sft(cfg_local, base, Path(tmp) / "trl", entries, args.eval),
        }
    print(f"{args.steps} steps of {cfg.train.batch_size} examples, LoRA rank {cfg.lm.lora.rank}, "
          f"{threads} threads; exact match on {args.eval} examples per split")  # fmt: skip
    print(f"{'':6} {'s/step':>8} {'last loss':>10} {'test_seen':>10} {'test_unseen':>12}")
    for name, r in results.items():
        print(f"{name:6} {r['seconds_per_step']:8.2f} {r['last_loss']:10.3f} {r['test_seen']:10.3f} "
              f"{r['test_unseen']:12.3f}")  # fmt: skip
    ratio = results["trl"]["seconds_per_step"] / results["ours"]["seconds_per_step"]
    print(f"SFTTrainer step time / ours: {ratio:.2f}x")


if __name__ == "__main__":
    main()
