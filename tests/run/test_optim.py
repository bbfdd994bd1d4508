"""Muon in the run's precision: the same iteration as torch.optim.Muon, in fp32 where the run is fp32."""

from __future__ import annotations

import pytest
import torch
from torch.optim._muon import _zeropower_via_newtonschulz

from rewritelab.run import (
    Muon,
    TrainConfig,
    make_optimizer,
    orthogonalize,
    run_config_from_dict,
    with_resolved_dtype,
)
from rewritelab.run.config import run_identity

NS = ((3.4445, -4.7750, 2.0315), 5, 1e-7)


@pytest.mark.parametrize("shape", [(16, 16), (48, 16), (16, 48)])
def test_orthogonalize_in_bf16_is_torchs_iteration_bit_for_bit(shape):
    grad = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    ours = orthogonalize(grad, *NS, torch.bfloat16)
    assert ours.dtype == torch.bfloat16
    assert torch.equal(ours, _zeropower_via_newtonschulz(grad, *NS))


def test_orthogonalize_leaves_its_input_alone():
    grad = torch.randn(8, 12, generator=torch.Generator().manual_seed(1))
    before = grad.clone()
    orthogonalize(grad, *NS, torch.float32)
    assert torch.equal(grad, before)


def _stepped(ns_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One matrix after two Muon steps (torch's own where `ns_dtype` is None), and its momentum buffer."""
    gen = torch.Generator().manual_seed(2)
    weight = torch.nn.Parameter(torch.randn(24, 8, generator=gen))
    kwargs = dict(lr=0.01, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    opt = (
        torch.optim.Muon([weight], **kwargs)
        if ns_dtype is None
        else Muon([weight], ns_dtype=ns_dtype, **kwargs)
    )
    for _ in range(2):
        weight.grad = torch.randn(24, 8, generator=gen)
        opt.step()
    return weight.detach(), opt.state[weight]["momentum_buffer"]


def test_fp32_muon_follows_torchs_update_at_fp32_precision():
    torch_w, torch_buf = _stepped(None)
    ours_w, ours_buf = _stepped(torch.float32)
    assert torch.equal(ours_buf, torch_buf)  # momentum untouched by the iteration
    assert not torch.equal(ours_w, torch_w)  # the iteration ran in fp32, not bf16 ...
    torch.testing.assert_close(ours_w, torch_w, atol=2e-3, rtol=0)  # ... and agrees to bf16's precision


def test_bf16_muon_is_torchs_muon():
    assert torch.equal(_stepped(torch.bfloat16)[0], _stepped(None)[0])


@pytest.mark.parametrize(
    ("muon_dtype", "ns_dtype"), [("float32", torch.float32), ("bfloat16", torch.bfloat16)]
)
def test_muon_orthogonalizes_in_muon_dtype(muon_dtype, ns_dtype):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    tc = TrainConfig(optimizer="muon", muon_dtype=muon_dtype, dtype="float32", device="cpu")
    muon, _ = make_optimizer(model, tc).optimizers
    assert muon.ns_dtype == ns_dtype


@pytest.mark.parametrize(("speedup", "resolved"), [(2.2, "bfloat16"), (0.05, "float32")])
def test_muon_dtype_auto_is_bf16_only_where_bf16_is_native(monkeypatch, speedup, resolved):
    """Resolved in the run's record (config.yaml, identity) for Muon runs; AdamW runs keep it as written."""
    monkeypatch.setattr("rewritelab.run.device.cpu_bf16_speedup", lambda: speedup)
    muon = run_config_from_dict(
        {"data": {}, "model": {"preset": "cpu-tiny"}, "train": {"optimizer": "muon", "device": "cpu"}}
    )
    assert with_resolved_dtype(muon).train.muon_dtype == resolved
    assert run_identity(muon)["train"]["muon_dtype"] == resolved
    adamw = run_config_from_dict({"data": {}, "model": {"preset": "cpu-tiny"}, "train": {"device": "cpu"}})
    assert with_resolved_dtype(adamw).train.muon_dtype == "auto"
