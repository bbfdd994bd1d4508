"""Training progress: a tqdm bar on a terminal, plain periodic lines otherwise, or nothing."""

from __future__ import annotations

import sys
import time

from rewritelab.run.checkpoint import TrainState
from rewritelab.run.config import ProgressMode

LOG_SECONDS = 10.0  # seconds between plain progress lines


class Progress:
    """A tqdm bar (loss, tokens/s, ETA) on a terminal, plain periodic lines otherwise, or nothing."""

    def __init__(self, mode: str, total: int, initial: int, enabled: bool):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "none"
        self.total = total
        self.start_step = initial
        self.start = time.perf_counter()
        self.last_line = self.start
        self.tokens = 0
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)

    def step(self, state: TrainState, tokens: int, lr: float) -> None:
        self.tokens += tokens
        now = time.perf_counter()
        rate = self.tokens / max(now - self.start, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"loss {state.loss:.4f} lr {lr:.2e} {rate / 1e3:.1f}k tok/s", refresh=False
            )
            self.bar.update(1)
        elif self.mode == "log" and (now - self.last_line >= LOG_SECONDS or state.step == self.total):
            self.last_line = now
            done = state.step - self.start_step
            eta = (self.total - state.step) * (now - self.start) / max(done, 1)
            self.message(
                f"step {state.step}/{self.total} ({100 * state.step / self.total:.0f}%) "
                f"loss {state.loss:.4f} lr {lr:.2e} {rate / 1e3:.1f}k tok/s eta {_duration(eta)}"
            )

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.mode != "none":
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_mode(requested: ProgressMode | bool | None, configured: ProgressMode) -> str:
    if requested is None:
        return configured
    if isinstance(requested, bool):
        return "auto" if requested else "none"
    return requested


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
