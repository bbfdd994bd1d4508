"""Stacked runs (issue 29, item 3): K runs of one sweep condition (same shapes, their own seeds) trained as
one stacked model in one process, against the same K runs stepped one after another on one core — does
paying each op's fixed cost once for K runs make a step of all K cheaper?

The data is E1's at I = 1000 rules (`cpu_recipe_throughput.recipe`; every example 24 tokens, so no run's
batch needs padding to another's), the model its `cpu-base` (4 × 128), batch 64. Run r starts from its own
initial weights (seed r) and reads its own batches (the trainer's first epoch at `train.seed = r`).

- separate: K GPTs, each stepped as the trainer steps it (`run.train_step`: `GPT.loss` forward and
  backward; `clip_grad_norm_`; the optimizer of `run.make_optimizer`) — what K runs cost on one core.
- vmap: the K weight sets stacked (`torch.func.stack_module_state`) and the loss of every run computed by
  `torch.func.vmap(functional_call)` over the trainer's loss path (`GPT._hidden` from the first answer
  column, the tied head, cross-entropy summed over targets / the batch's target count), PyTorch's
  model-ensembling recipe; one backward over the sum of the K losses. SDPA's CPU flash kernel has no
  batching rule, so vmap falls back to calling it once per run.
- bmm: the same forward written by hand on the stacked weights: batched matmuls (`baddbmm`), one
  LayerNorm, attention and cross-entropy call over all K runs' rows.

Both stacked contenders clip each run's gradient to its own norm (per slice, not globally) and step the
trainer's optimizer over the stacked parameters: AdamW is elementwise, so it is the same on a stack; with
`--optimizer muon`, torch.optim.Muon takes only 2-D parameters, so its step is re-done here with each
slice's Newton-Schulz iteration as batched matmuls (same coefficients, bf16, learning-rate adjustment).

Before timing, each stacked contender is checked against the separate runs: from the same initial weights
and batches, after a few steps every run's slice of the stack must equal that run's parameters
(`torch.testing.assert_close` at float32 tolerance), or the script exits with an error. Then the
contenders are timed round-robin in one process (load from other processes hits all alike) and the best
pass is reported as seconds per step of all K runs; "gain" is separate / stacked.

    .venv/bin/python benchmarks/stacked_runs.py --threads 1 [--ks 2 3 4 8] [--optimizer muon] [--reps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _common import set_threads
from cpu_recipe_throughput import recipe
from rewritelab.data import generate_dataset
from rewritelab.model import GPT, ModelConfig
from rewritelab.run import (
    Dist,
    TrainConfig,
    TrainingLoss,
    epoch_batches,
    make_optimizer,
    target_count,
    train_step,
)
from rewritelab.tokenizer import PAD_ID, Encoded, Tokenizer

CPU = torch.device("cpu")
# SDPA's CPU flash kernel has no vmap batching rule: vmap runs it once per run (the math backend, which
# does batch, measured no faster here). Said once in the docstring instead of warned on every call.
warnings.filterwarnings("ignore", message=".*batching rule for aten::_scaled_dot_product_flash_attention")


@dataclasses.dataclass
class Bench:
    """What every contender shares: the encoded training split, the train section, a model template."""

    enc: Encoded
    train: TrainConfig
    template: GPT

    def models(self, k: int) -> list[GPT]:
        """K freshly initialised GPTs, run r from seed r."""
        out = []
        for r in range(k):
            torch.manual_seed(r)
            t = self.template
            out.append(GPT(copy.deepcopy(t.cfg), t.vocab_size, t.block_size).train())
        return out

    def batches(self, k: int) -> list[list[np.ndarray]]:
        """Each run's full batches of its first epoch, as the trainer orders them at seed r."""
        out = []
        for r in range(k):
            epoch = epoch_batches(self.enc.lengths, dataclasses.replace(self.train, seed=r), 0)
            out.append([b for b in epoch if len(b) == self.train.batch_size])
        return out


# ---------------------------------------------------------------------------------------------------------
# The contenders: each a `step()` that trains all K runs by one batch each


def separate(bench: Bench, models: list[GPT], batches: list[list[np.ndarray]]) -> Callable[[], None]:
    """K runs stepped one after another, each exactly as `run.train_model` steps it."""
    tc, amp, dist = bench.train, contextlib.nullcontext(), Dist()
    nets = [TrainingLoss(m) for m in models]
    opts = [make_optimizer(m, tc) for m in models]
    params = [list(m.parameters()) for m in models]
    i = 0

    def step() -> None:
        nonlocal i
        for r, (net, opt) in enumerate(zip(nets, opts, strict=True)):
            train_step(net, bench.enc, batches[r][i % len(batches[r])], tc, dist, CPU, amp)
            nn.utils.clip_grad_norm_(params[r], tc.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        i += 1

    return step


def stacked(
    bench: Bench, models: list[GPT], batches: list[list[np.ndarray]], how: str
) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
    """K runs as one stacked model (`how`: "vmap" or "bmm"); returns the step and the stacked parameters."""
    tc, k = bench.train, len(models)
    params, _ = torch.func.stack_module_state(models)  # name -> (K, ...) leaf; the tied head is wte
    opt = stacked_optimizer(bench.template, params, tc)
    loss_fn = _vmap_loss(bench.template, params) if how == "vmap" else _bmm_loss(bench.template.cfg, params)
    grads_of = list(params.values())
    i = 0

    def step() -> None:
        nonlocal i
        rows = [batches[r][i % len(batches[r])] for r in range(k)]
        x, y, mask = (t.view(k, len(rows[0]), -1) for t in bench.enc.batch(np.concatenate(rows), tc.loss_on))
        weight = (y != PAD_ID).float() * mask
        counted = torch.nonzero(weight.flatten(0, 1).any(0))
        start = int(counted[0]) if len(counted) else x.shape[-1] - 1  # as GPT.loss, over all K runs
        counts = torch.tensor([target_count(bench.enc, b, tc.loss_on) for b in rows], dtype=torch.float32)
        (loss_fn(x, y, weight, start) / counts).sum().backward()
        clip_per_run([p.grad for p in grads_of], tc.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        i += 1

    return step, params


def _vmap_loss(template: GPT, params: dict[str, torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Per-run summed cross-entropy (K,) by `vmap(functional_call)` over one run's loss path."""
    base = _RunLoss(copy.deepcopy(template))  # its own weights are never read (meta would untie the head)
    named = {f"model.{name}": p for name, p in params.items()}

    def one(p, x, y, weight, start):
        return torch.func.functional_call(base, p, (x, y, weight, start))

    def loss(x, y, weight, start):
        return torch.func.vmap(one, in_dims=(0, 0, 0, 0, None))(named, x, y, weight, start)

    return loss


class _RunLoss(nn.Module):
    """One run's summed answer cross-entropy: `GPT.loss`'s computation with `start` given, since vmap
    cannot read a data-dependent column index from a batched tensor."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, start: int) -> torch.Tensor:
        n = x.shape[-1]
        logits = self.model.lm_head(self.model._hidden(x, torch.arange(n), start=start))
        ce = F.cross_entropy(logits.flatten(0, 1), y[:, start:].flatten(), reduction="none")
        return (ce * weight[:, start:].flatten()).sum()


def _bmm_loss(cfg: ModelConfig, params: dict[str, torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Per-run summed cross-entropy (K,): the GPT's forward written on (K, ...) weights."""
    P, H, C = params, cfg.n_head, cfg.d_model

    def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(K, B, T, in) → (K, B, T, out), one baddbmm over all runs."""
        K, B, T, _ = x.shape
        return torch.baddbmm(b[:, None], x.reshape(K, B * T, -1), w.transpose(1, 2)).view(K, B, T, -1)

    def dense(x: torch.Tensor, name: str) -> torch.Tensor:
        return linear(x, P[f"{name}.weight"], P[f"{name}.bias"])

    def layer_norm(x: torch.Tensor, name: str) -> torch.Tensor:
        w, b = P[f"{name}.weight"], P[f"{name}.bias"]
        return torch.addcmul(b[:, None, None], F.layer_norm(x, (C,)), w[:, None, None])

    def heads(t: torch.Tensor) -> torch.Tensor:
        K, B, T, _ = t.shape
        return t.reshape(K * B, T, H, C // H).transpose(1, 2)

    def attention(x: torch.Tensor, name: str, start: int) -> torch.Tensor:
        w, b = P[f"{name}.c_attn.weight"], P[f"{name}.c_attn.bias"]
        K, B, T, _ = x.shape
        if start == 0:
            q, k, v = linear(x, w, b).split(C, dim=-1)
            y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        else:
            q = linear(x[:, :, start:], w[:, :C], b[:, :C])
            k, v = linear(x, w[:, C:], b[:, C:]).split(C, dim=-1)
            causal = torch.ones(T - start, T, dtype=torch.bool).tril(diagonal=start)
            y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=causal)
        y = y.transpose(1, 2).reshape(K, B, T - start, C)
        return dense(y, f"{name}.c_proj")

    def loss(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, start: int) -> torch.Tensor:
        K, B, T = x.shape
        wte = P["wte.weight"]
        offset = (torch.arange(K) * wte.shape[1]).view(K, 1, 1)  # run r's ids index its own table
        h = F.embedding(x + offset, wte.reshape(-1, C)) + P["wpe.weight"][:, None, :T]
        for layer in range(cfg.n_layer):
            name = f"blocks.{layer}"
            s = start if layer == cfg.n_layer - 1 else 0
            h = h[:, :, s:] + attention(layer_norm(h, f"{name}.ln_1"), f"{name}.attn", s)
            m = F.gelu(dense(layer_norm(h, f"{name}.ln_2"), f"{name}.mlp.c_fc"))
            h = h + dense(m, f"{name}.mlp.c_proj")
        h = layer_norm(h, "ln_f")
        logits = torch.bmm(h.reshape(K, -1, C), wte.transpose(1, 2))  # the tied head
        ce = F.cross_entropy(logits.flatten(0, 1), y[:, :, start:].flatten(), reduction="none")
        return (ce.view(K, -1) * weight[:, :, start:].reshape(K, -1)).sum(1)

    return loss


# ---------------------------------------------------------------------------------------------------------
# Per-run clipping and the optimizer over the stack


def clip_per_run(grads: list[torch.Tensor], max_norm: float) -> None:
    """`clip_grad_norm_` on each run's slice: the norm over every parameter's slice r scales slice r."""
    if max_norm <= 0:
        return
    norms = torch.stack([torch.linalg.vector_norm(g, dim=tuple(range(1, g.dim()))) for g in grads])
    coef = (max_norm / (torch.linalg.vector_norm(norms, dim=0) + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))


def stacked_optimizer(template: GPT, params: dict[str, torch.Tensor], tc: TrainConfig):
    """`make_optimizer`'s optimizer (groups, decay, lr, betas) over the stacked parameters instead of one
    run's: built on the template, each group's parameters swapped for their stacks before any state exists.
    Muon is replaced by `StackedMuon`, the same step on (K, out, in) stacks."""
    opt = make_optimizer(template, tc)
    name_of = {id(p): name for name, p in template.named_parameters()}
    for group in opt.param_groups:
        group["params"] = [params[name_of[id(p)]] for p in group["params"]]
    if tc.optimizer == "muon":
        muon, adamw = opt.optimizers
        opt.optimizers = (StackedMuon(muon.param_groups[0]["params"], muon.defaults), adamw)
    return opt


class StackedMuon(torch.optim.Optimizer):
    """torch.optim.Muon's step (torch 2.13, `_single_tensor_muon`) on (K, out, in) stacks: momentum and
    Nesterov lerps, each slice's Newton-Schulz iteration in bf16 as batched matmuls, decoupled weight decay
    and the shape-adjusted learning rate of one slice."""

    @torch.no_grad()
    def step(self) -> None:
        from torch.optim._muon import _adjust_lr

        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad))
                buf.lerp_(p.grad, 1 - momentum)
                update = p.grad.lerp(buf, momentum) if group["nesterov"] else buf
                update = _newton_schulz(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update, alpha=-_adjust_lr(lr, group["adjust_lr_fn"], p.shape[1:]))


def _newton_schulz(grad: torch.Tensor, coefficients, steps: int, eps: float) -> torch.Tensor:
    """`torch.optim._muon._zeropower_via_newtonschulz` on each (out, in) slice of a (K, out, in) stack."""
    a, b, c = coefficients
    x = grad.bfloat16()
    tall = grad.size(1) > grad.size(2)
    if tall:
        x = x.mT
    x = x / torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


# ---------------------------------------------------------------------------------------------------------


def check(bench: Bench, k: int, how: str, steps: int = 3) -> None:
    """Exit with an error unless `steps` stacked steps give each run the parameters it gets alone.

    In float64: a gradient that is zero in exact arithmetic (the key bias's: softmax ignores a shift
    shared by all keys) is rounding noise, which AdamW's normalisation turns into updates of ~lr in
    float32, different for any two orders of summation; in float64 that noise stays far below AdamW's eps.
    """
    batches = bench.batches(k)
    models = [m.double() for m in bench.models(k)]
    step, params = stacked(bench, models, batches, how)  # stacks copies: the models are still untrained
    alone = separate(bench, models, batches)
    for _ in range(steps):
        step()
        alone()
    for r, model in enumerate(models):
        for name, p in model.named_parameters():
            try:
                torch.testing.assert_close(params[name][r], p, rtol=1.3e-6, atol=1e-5)
            except AssertionError as e:
                sys.exit(f"stacked_runs: {how}, K = {k}: run {r}'s {name} differs from its run alone: {e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 3, 4, 8], help="runs per stack")
    parser.add_argument("--optimizer", choices=["adamw", "muon"], default="adamw")
    parser.add_argument("--contenders", nargs="+", choices=["vmap", "bmm"], default=["vmap", "bmm"])
    parser.add_argument("--steps", type=int, default=4, help="steps per timed pass")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per contender (best reported)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    cfg = recipe("e2-cpu")  # v2 recipe on E1's data (I = 1000), as cpu_recipe_throughput
    train = dataclasses.replace(cfg.train, optimizer=args.optimizer)
    tokenizer = Tokenizer.for_data(cfg.data)
    enc = tokenizer.encode_split(generate_dataset(cfg.data).splits["train"])
    template = GPT(cfg.model, tokenizer.vocab_size, int(enc.lengths.max()))
    bench = Bench(enc, train, template)
    for how in args.contenders:
        check(bench, 3, how)
    names = ", ".join(args.contenders)
    print(f"check passed: {names} stacks equal 3 runs alone after 3 steps ({args.optimizer}, float64)")

    steps: dict[tuple[int, str], Callable[[], None]] = {}
    for k in args.ks:
        batches = bench.batches(k)
        steps[k, "separate"] = separate(bench, bench.models(k), batches)
        for how in args.contenders:
            steps[k, how] = stacked(bench, bench.models(k), batches, how)[0]
    for step in steps.values():
        step()  # warm-up: allocator, kernels, optimizer state
    times: dict[tuple[int, str], list[float]] = {key: [] for key in steps}
    for _ in range(args.reps):
        for key, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[key].append((time.perf_counter() - t0) / args.steps)

    print(
        f"torch {torch.__version__}, {threads} thread(s), {args.optimizer}; cpu-base "
        f"{template.num_params() / 1e6:.2f}M params, batch {train.batch_size}, {args.steps} steps x "
        f"{args.reps} passes; seconds per step of all K runs (best, median)"
    )
    header = f"  {'K':>2} {'separate':>15}" + "".join(f" {how:>15} {'gain':>6}" for how in args.contenders)
    print(header)
    for k in args.ks:
        base = min(times[k, "separate"])
        line = f"  {k:>2} {base:7.3f} {statistics.median(times[k, 'separate']):7.3f}"
        for how in args.contenders:
            t = times[k, how]
            line += f" {min(t):7.3f} {statistics.median(t):7.3f} {base / min(t):5.2f}x"
        print(line)


if __name__ == "__main__":
    main()
