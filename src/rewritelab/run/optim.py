"""The from-scratch kind's optimizers: AdamW, or Muon on the hidden matrices paired with AdamW on the rest.

torch.optim.Muon runs its Newton-Schulz iterations in bf16, always. On a CPU without native bf16 those
matmuls are emulated: measured 28-54x slower than fp32 at the 4 x 128 model's matrices (an AVX2-only
CPU, emulated here with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2), which would make a Muon step
several times an AdamW step. So `Muon` orthogonalizes in `train.muon_dtype`: bf16 (torch's
implementation, unchanged) where bf16 is native, the same iteration in fp32 elsewhere, chosen by
measurement (`run.device.resolved_muon_dtype`) and recorded in the run like `train.dtype`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim._muon import _adjust_lr  # torch's per-matrix lr scale, the same in both precisions

from rewritelab.run.config import TrainConfig
from rewritelab.run.device import resolved_muon_dtype

# Optimizer state per hidden-matrix weight, in floats: AdamW's two moments, Muon's one momentum (a floor
# on a step's memory with the weights and gradients, for `ScratchKind.check_fits`).
STATE_FLOATS = {"adamw": 2, "muon": 1}


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | OptimizerPair:
    """AdamW, weight decay on matrices only (not biases, LayerNorm gains or embeddings); or, with
    `optimizer: muon`, Muon on those hidden matrices and AdamW on the rest (embeddings, gains, biases).
    Muon scales its update to AdamW's RMS (`match_rms_adamw`), so it takes the same lr and weight decay."""
    exempt = {
        id(p)
        for m in model.modules()
        if isinstance(m, (nn.Embedding, nn.LayerNorm))
        for p in m.parameters(recurse=False)
    }
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if id(p) in exempt or name.endswith("bias") else decay).append(p)
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "muon":
        ns_dtype = getattr(torch, resolved_muon_dtype(cfg.muon_dtype, cfg.device))
        muon = Muon(
            decay,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            adjust_lr_fn="match_rms_adamw",
            ns_dtype=ns_dtype,
        )
        return OptimizerPair(muon, torch.optim.AdamW(rest, lr=cfg.lr, betas=betas, weight_decay=0.0))
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas)


def orthogonalize(
    grad: torch.Tensor,
    coefficients: tuple[float, float, float],
    steps: int,
    eps: float,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Muon's quintic Newton-Schulz iteration towards the orthogonal factor of `grad`, in `dtype`: the
    same operations as torch.optim.Muon's (tests check bf16 against it bit for bit), at any precision."""
    a, b, c = coefficients
    wide = grad.size(0) > grad.size(1)  # iterate on the wide orientation: the Gram matrix is the small one
    x = grad.to(dtype, copy=True)  # never scale the caller's tensor (the momentum buffer) in place
    if wide:
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if wide else x


class Muon(torch.optim.Muon):
    """torch.optim.Muon whose Newton-Schulz iterations run in `ns_dtype` (bf16 in torch's own, kept as is)."""

    def __init__(self, params, *, ns_dtype: torch.dtype = torch.bfloat16, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        if self.ns_dtype == torch.bfloat16:
            return super().step(closure)
        if closure is not None:
            raise ValueError("Muon: a closure is not supported")
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - momentum)
                update = p.grad.lerp(buf, momentum) if group["nesterov"] else buf
                ns = (group["ns_coefficients"], group["ns_steps"], group["eps"])
                update = orthogonalize(update, *ns, self.ns_dtype)
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update, alpha=-_adjust_lr(lr, group["adjust_lr_fn"], p.shape))
        return None


class OptimizerPair:
    """Two optimizers over disjoint parameters stepped as one: the loop sets the lr on `param_groups`,
    steps, zeroes and checkpoints them together (`state_dict` holds both, in order)."""

    def __init__(self, first: torch.optim.Optimizer, second: torch.optim.Optimizer):
        self.optimizers = (first, second)

    @property
    def param_groups(self) -> list[dict]:
        """Read afresh: `load_state_dict` replaces an optimizer's group dicts."""
        return [group for opt in self.optimizers for group in opt.param_groups]

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"pair": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for opt, sub in zip(self.optimizers, state["pair"], strict=True):
            opt.load_state_dict(sub)
