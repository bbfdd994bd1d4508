"""TRL: SFTTrainer with a LoRA adapter on the chat export (loss on the completion only) and GRPOTrainer
with the verifier's reward, each a few steps offline on a tiny random model."""

from __future__ import annotations

import json

import pytest

from rewritelab.cli import main
from rewritelab.integrations.gym import RewriteTaskConfig, RewriteTaskDataset
from rewritelab.integrations.trl import (
    greedy_accuracy,
    grpo_dataset,
    lora_config,
    reward_function,
    trainable_model,
    trainer_args,
)

trl = pytest.importorskip("trl")
pytest.importorskip("peft")

DATA = {"alphabet": "abcd", "input_len": 4, "pattern_len": 2, "replacement_len": 1, "num_rules": 4,
        "budget": 32, "test_rules": 2, "test_examples_per_rule": 2, "validation_rules": 4,
        "seed": 0}  # fmt: skip


def base_model(path):
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(path)


def test_sft_trainer_trains_lora_on_the_chat_export_with_the_loss_on_the_answer(tmp_path, tiny_llama, capsys):
    import datasets
    import transformers

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": DATA}))
    assert main(["generate", str(config), "--out", str(tmp_path / "d"), "--format", "chat"]) == 0
    train = datasets.load_dataset(
        "json", data_files=str(tmp_path / "d" / "sft" / "train.jsonl"), split="train"
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llama)
    model = base_model(tiny_llama)
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"), max_steps=3, per_device_train_batch_size=8, learning_rate=1e-2,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                             peft_config=lora_config(model, rank=4, alpha=8))  # fmt: skip
    row = trainer.train_dataset[0]  # the loss counts where labels are not -100: the completion only
    labels = row["labels"]
    first = next(i for i, t in enumerate(labels) if t != -100)
    assert -100 not in labels[first:] and first > 0
    assert tokenizer.decode(labels[first:]).startswith(train[0]["completion"][0]["content"])
    assert train[0]["prompt"][0]["content"] in tokenizer.decode(row["input_ids"][:first])
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    after = dict(trainer.model.named_parameters())
    assert before and any(not after[n].detach().equal(p) for n, p in before.items())  # the adapter learned
    assert not any(p.requires_grad for n, p in after.items() if "lora_" not in n)  # the base stays frozen


def test_grpo_trainer_rewards_completions_with_the_verifier(tmp_path, tiny_llama):
    import transformers

    gym = RewriteTaskDataset(RewriteTaskConfig(data=DATA, split="train", seed=0, size=8))
    reward = reward_function()
    seen = []

    def recording_reward(completions, metadata, **kwargs):
        seen.extend(zip(completions, metadata, strict=True))
        return reward(completions, metadata, **kwargs)

    recording_reward.__name__ = "rewritelab_reward"
    model = base_model(tiny_llama)
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "grpo"), max_steps=2, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=8, learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = trl.GRPOTrainer(
        model=model, reward_funcs=recording_reward, args=args, train_dataset=grpo_dataset(gym),
        processing_class=transformers.AutoTokenizer.from_pretrained(tiny_llama),
        peft_config=lora_config(model),
    )  # fmt: skip
    trainer.train()
    assert len(seen) >= 8 and all(m["source_dataset"] == "rewritelab" for _, m in seen)
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert logged and all(0.0 <= h["reward"] <= 1.0 for h in logged)
    entry = gym[0]
    right = [{"role": "assistant", "content": entry["answer"]}]
    wrong = [{"role": "assistant", "content": entry["answer"] + "a"}]
    assert reward([right, wrong], [entry["metadata"]] * 2) == [1.0, 0.0]
    assert 0.0 < reward_function(shaped=True)([wrong], [entry["metadata"]])[0] < 1.0


def test_trainer_args_carry_the_train_section(tmp_path):
    from rewritelab.run import TrainConfig

    train = TrainConfig(batch_size=8, grad_accum=2, lr=3e-4, warmup_steps=5, schedule="cosine", max_steps=7,
                        seed=3, device="cpu", track=["tensorboard"])  # fmt: skip
    args = trainer_args(trl.SFTConfig, train, str(tmp_path), logging_steps=5)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.learning_rate) == (
        4,
        2,
        3e-4,
    )
    assert (args.warmup_steps, args.max_steps, args.seed, args.logging_steps) == (5, 7, 3, 5)
    assert (
        args.lr_scheduler_type == "cosine" and args.adam_beta2 == 0.98 and args.report_to == ["tensorboard"]
    )


def test_greedy_accuracy_scores_what_the_model_writes(tiny_llama, monkeypatch):
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llama)
    model = base_model(tiny_llama)
    entries = list(RewriteTaskDataset(RewriteTaskConfig(data=DATA, split="test_unseen", seed=0, size=6)))

    def writes(answers):
        def generate(input_ids, **_):
            tails = [
                tokenizer(a + tokenizer.eos_token, add_special_tokens=False)["input_ids"] for a in answers
            ]
            width = max(map(len, tails))
            pad = [t + [tokenizer.eos_token_id] * (width + 1 - len(t)) for t in tails]
            return torch.cat([input_ids, torch.tensor(pad[: len(input_ids)])], dim=1)

        monkeypatch.setattr(model, "generate", generate)

    writes([e["answer"] for e in entries])
    assert greedy_accuracy(model, tokenizer, entries) == 1.0
    writes([e["answer"] if i % 2 else e["answer"] + "b" for i, e in enumerate(entries)])
    assert greedy_accuracy(model, tokenizer, entries) == 0.5


def test_trainable_model_drops_the_gguf_mark_and_keeps_the_weights(tiny_llama):
    model = base_model(tiny_llama)
    model.config.quantization_config = {"quant_method": "gguf"}  # what a GGUF load leaves behind
    plain = trainable_model(model)
    assert getattr(plain.config, "quantization_config", None) is None
    assert all(p.equal(model.state_dict()[n]) for n, p in plain.state_dict().items())
    assert trainable_model(plain) is plain
