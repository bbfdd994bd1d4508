"""The bf16 measurement behind `dtype: auto` on a CPU."""

from __future__ import annotations

import os
import subprocess
import sys

from rewritelab.run.device import cpu_bf16_speedup


def test_bf16_speedup_reads_the_same_on_a_loaded_machine():
    """Busy processes on every core preempt the timed matmuls; CPU time does not count the preemption, so
    repeated measurements agree (wall time spread them by 2x here and once read native bf16 as slow)."""
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        readings = [cpu_bf16_speedup.__wrapped__() for _ in range(8)]
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert max(readings) / min(readings) < 1.5, readings
