"""A checkpoint is verified whole before it is used (issue 38, cases 5 and 8): its zip container must be
exactly what torch.save writes, with every member's CRC intact, and its loop state must be one that the
run's schedule reaches. Anything else is one line and exit 2, from `evaluate` and from a resume alike,
and changes no file."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from rewritelab.cli import main
from rewritelab.run.container import verify_container
from support import TINY

SHORT = ["--set", "train.max_steps=20", "--set", "train.eval_every=0", "--progress", "none"]


def refused_by_evaluate_and_resume(run: Path, capsys, outputs_of, needle: str) -> None:
    """`evaluate` and then a resume (summary.json gone: an unfinished run) each refuse the run's checkpoint
    in one line holding `needle`; neither writes a summary or predictions."""
    before = outputs_of(run)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--progress", "none"]) == 2
    assert needle in one_line_error(capsys)
    assert outputs_of(run) == before
    (run / "summary.json").unlink()
    assert main(["train", str(TINY), "--out", str(run), *SHORT]) == 2
    assert needle in one_line_error(capsys)
    assert not (run / "summary.json").exists()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewritelab: error: ") and "\n" not in err and "Traceback" not in err
    return err


# --- case 5: the zip container ----------------------------------------------------------------------------


def central_record(data: bytes) -> int:
    """Offset of the first central-directory record (the zip's own pointer to it, from the end record)."""
    return struct.unpack_from("<I", data, len(data) - 6)[0]


def set_u16(offset: int, value: int | None = None, bit: int | None = None) -> Callable[[bytearray], None]:
    def edit(data: bytearray) -> None:
        at = central_record(bytes(data)) + offset
        old = struct.unpack_from("<H", data, at)[0]
        struct.pack_into("<H", data, at, old | 1 << bit if bit is not None else value)

    return edit


@pytest.mark.parametrize(
    "edit, needle",
    [
        (set_u16(8, bit=0), "has flags 0x0809, not the 0x0808 torch writes (0x0001: encrypted)"),
        (set_u16(10, value=99), "names compression method 99"),
        (set_u16(10, value=8), "names compression method 8"),
    ],
    ids=["encrypted", "method-99", "deflated"],
)
def test_a_central_directory_record_torch_never_writes_is_refused(
    edit, needle, finished_run, capsys, outputs_of, one_thread
):
    path = finished_run / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    edit(data)
    path.write_bytes(bytes(data))
    refused_by_evaluate_and_resume(finished_run, capsys, outputs_of, needle)


def test_members_marked_as_directories_are_refused_not_read_as_empty(
    finished_run, capsys, outputs_of, one_thread
):
    """The silent case: bit 4 of a central record's external attributes (the DOS directory bit) passes
    every CRC, and torch then reads the tensor as a directory: `evaluate` scored another model."""
    path = finished_run / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    at = central_record(bytes(data))
    while data[at : at + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        if b"/data/" in data[at + 46 : at + 46 + name_len]:
            data[at + 38] |= 0x10
        at += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))
    needle = "is not one torch writes (signature, versions, time, attributes or comment)"
    refused_by_evaluate_and_resume(finished_run, capsys, outputs_of, needle)


def test_a_checkpoint_repacked_by_another_zip_writer_is_refused(finished_run, capsys, outputs_of, one_thread):
    """Same members, same bytes, a valid zip that torch.load reads: but not the layout torch writes."""
    path = finished_run / "checkpoint.pt"
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as target:
        for name, data in members:
            target.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    refused_by_evaluate_and_resume(finished_run, capsys, outputs_of, "checkpoint.pt: damaged (")


def test_what_torch_writes_passes_including_empty_members_and_is_verified_whole(tmp_path):
    """An empty tensor is a member without a data descriptor (flags 0x0800): torch writes it, so it passes."""
    path = tmp_path / "checkpoint.pt"
    torch.save({"empty": torch.zeros(0), "weights": torch.arange(6.0)}, path)
    verify_container(path)


# --- case 8: the loop state -------------------------------------------------------------------------------


def edit_checkpoint(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """A hand-made checkpoint: the real one loaded, changed, and saved by torch (a valid container)."""
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)


def state(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda ckpt: ckpt["state"].update(fields)


def both(ckpt: dict[str, Any]) -> None:
    ckpt["total_steps"] = ckpt["state"]["step"] = 10**9


def sizes(ckpt: dict[str, Any]) -> None:
    ckpt["vocab_size"] = -1


def short_mt(ckpt: dict[str, Any]) -> None:
    ckpt["rng"][0]["python"][1] = ckpt["rng"][0]["python"][1][:10]


def torch_rng(ckpt: dict[str, Any]) -> None:
    ckpt["rng"][0]["torch"] = torch.zeros(7, dtype=torch.uint8)


@pytest.mark.parametrize(
    "change, needle",
    [
        pytest.param(state(step=10**9), "step 1000000000 of 20, where this run has 20 steps", id="step"),
        pytest.param(both, "step 1000000000 of 1000000000, where this run has 20 steps", id="step-and-total"),
        pytest.param(state(step=20.0), "loop state step = 20.0 is not one training writes", id="float"),
        pytest.param(state(step=True), "loop state step = True is not one training writes", id="bool"),
        pytest.param(state(step=2**70), "loop state step = a 71-bit integer is not one training", id="huge"),
        pytest.param(state(epoch=5), "epoch 5, batch 20 is not where step 20 reads the data", id="epoch"),
        pytest.param(state(seconds=float("inf")), "loop state seconds = inf", id="seconds"),
        pytest.param(state(loss=float("nan")), "loop state loss = nan", id="loss"),
        pytest.param(
            state(window_steps=21),
            "the loss window or the finish stamp does not fit step 20 of 20",
            id="window",
        ),
        pytest.param(state(finished_at="yesterday"), "loop state finished_at = 'yesterday'", id="stamp"),
        pytest.param(sizes, "its vocab_size entry is missing or not as training writes it", id="sizes"),
        pytest.param(short_mt, "RNG states that are not the ones training saves", id="mt"),
        pytest.param(torch_rng, "RNG states that are not the ones training saves", id="torch"),
    ],
)
def test_a_loop_state_the_run_never_reaches_is_refused(
    change, needle, finished_run, capsys, outputs_of, one_thread
):
    edit_checkpoint(finished_run / "checkpoint.pt", change)
    refused_by_evaluate_and_resume(finished_run, capsys, outputs_of, needle)


def test_a_resume_refuses_tokens_its_batches_do_not_hold(finished_run, capsys, one_thread):
    """Only a resume has the encoded training data at hand to count the tokens of the batches read."""
    tokens = torch.load(finished_run / "checkpoint.pt", weights_only=True)["state"]["tokens"]
    edit_checkpoint(finished_run / "checkpoint.pt", state(tokens=tokens + 1))
    (finished_run / "summary.json").unlink()
    capsys.readouterr()
    assert main(["train", str(TINY), "--out", str(finished_run), *SHORT]) == 2
    assert f"{tokens + 1} tokens is not what the batches up to step 20 hold" in one_line_error(capsys)
    assert not (finished_run / "summary.json").exists()


def test_an_untouched_checkpoint_saved_again_by_torch_still_evaluates_to_the_same_bytes(
    finished_run, capsys, outputs_of, one_thread
):
    """The checks refuse only what training never writes: a checkpoint re-saved unchanged passes them."""
    before = outputs_of(finished_run)
    edit_checkpoint(finished_run / "checkpoint.pt", lambda ckpt: None)
    assert main(["evaluate", str(finished_run), "--progress", "none"]) == 0
    assert outputs_of(finished_run) == before
