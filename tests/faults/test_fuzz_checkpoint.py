"""Random single-bit flips in a finished run's checkpoint.pt (issue 38): every time, `evaluate` either refuses
it in one line (exit 2) or writes what it writes from the undamaged file, byte for byte. Never a
traceback, never a silently changed number, never a rewritten output from a damaged file.

Half the flips land in the zip's own records (headers, data descriptors, central directory, end records),
where a flip is hardest to notice; the other half anywhere. The CI run flips 1,000 bits (seconds: most
flips are refused before any data is read); the slow one 20,000."""

from __future__ import annotations

import random
import struct
import zipfile
from pathlib import Path

import pytest

from rewritelab.cli import main


def member_bytes(path: Path) -> list[range]:
    """The byte ranges of the members' own data (what torch.save stored), from the undamaged archive."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    ranges = []
    for info in infos:
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_len + extra_len
        ranges.append(range(start, start + info.file_size))
    return ranges


def bits_to_flip(path: Path, n: int, seed: int) -> list[int]:
    """`n` bit positions: half in the zip's records (outside every member's data), half anywhere."""
    inside = set().union(*member_bytes(path))
    size = path.stat().st_size
    records = [byte for byte in range(size) if byte not in inside]
    rng = random.Random(seed)
    in_records = [8 * rng.choice(records) + rng.randrange(8) for _ in range(n // 2)]
    return in_records + [rng.randrange(8 * size) for _ in range(n - n // 2)]


@pytest.mark.parametrize("flips", [1000, pytest.param(20000, marks=pytest.mark.slow)])
def test_a_flipped_bit_is_refused_in_one_line_or_changes_nothing(
    flips, finished_run, capsys, outputs_of, one_thread
):
    path = finished_run / "checkpoint.pt"
    assert main(["evaluate", str(finished_run), "--progress", "none"]) == 0
    undamaged, reference = path.read_bytes(), outputs_of(finished_run)
    for bit in bits_to_flip(path, flips, seed=38):
        damaged = bytearray(undamaged)
        damaged[bit // 8] ^= 1 << bit % 8
        path.write_bytes(bytes(damaged))
        capsys.readouterr()
        code = main(["evaluate", str(finished_run), "--progress", "none"])
        err = capsys.readouterr().err
        where = f"bit {bit % 8} of byte {bit // 8}"
        assert code in (0, 2), f"{where}: exit {code}"
        if code == 2:
            assert err.startswith("rewritelab: error: ") and err.count("\n") == 1, f"{where}: {err!r}"
        assert outputs_of(finished_run) == reference, f"{where}: evaluate changed its outputs (exit {code})"
