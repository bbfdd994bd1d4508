"""Random damage to a sweep's results.sqlite (issue 38's fuzz, database part): whatever bits or bytes
change, `rewritelab results` either refuses in one line (exit 2) or prints exactly what the undamaged
database gives. Never a traceback, never a changed number.

Seeded, so a failing case replays: half the damage lands anywhere in the file (free space included), half
on its non-zero bytes (headers, schema, cells and values)."""

from __future__ import annotations

import contextlib
import io
import random

import pytest

from rewritelab.cli import main
from support import e2_points, make_sweep

CASES = 100


@pytest.fixture(scope="module")
def undamaged(tmp_path_factory) -> tuple[bytes, str]:
    """A small sweep's database (ten rows, no-op breakdowns included) and its `results` output."""
    sweep = make_sweep(tmp_path_factory.mktemp("fuzz") / "s", e2_points()[3:8], seeds=(0,))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["results", str(sweep)]) == 0
    return (sweep / "results.sqlite").read_bytes(), out.getvalue()


def damage(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random change: a flipped bit, a byte set, or a run of up to 64 random bytes."""
    changed = bytearray(data)
    if rng.random() < 0.5:
        at = rng.randrange(len(data))
    else:
        at = rng.choice([i for i, byte in enumerate(data) if byte])
    kind = rng.choice(["bit", "bit", "byte", "run"])
    if kind == "bit":
        changed[at] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        changed[at] = rng.randrange(256)
    else:
        length = min(rng.randint(2, 64), len(data) - at)
        changed[at : at + length] = rng.randbytes(length)
    return bytes(changed), f"{kind} at byte {at}"


@pytest.mark.parametrize("case", range(CASES))
def test_a_damaged_database_is_refused_in_one_line_or_reads_the_same(case, undamaged, tmp_path, capsys):
    data, expected = undamaged
    damaged, what = damage(data, random.Random(case))
    db = tmp_path / "results.sqlite"
    db.write_bytes(damaged)
    code = main(["results", str(db)])
    out, err = capsys.readouterr()
    if code == 0:
        assert out == expected, f"{what}: a changed result went unnoticed"
    else:
        assert code == 2 and err.startswith("rewritelab: error: ") and err.count("\n") == 1, (what, err)
