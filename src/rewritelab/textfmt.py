"""Text for people: durations, fixed-width tables, progress and values quoted in messages, one helper per
job (`quoted`: an error message shows at most a few dozen characters of any value it quotes).

Training (steps), evaluation (examples scored) and sweeps (runs) all report progress the same way: a tqdm
bar on a terminal, or — when stderr is a file or a pipe, as under `make demo > log` or a batch scheduler —
one plain line every `every_s` seconds, so a log always shows that work goes on and when it should end.
"""

from __future__ import annotations

import reprlib
import sys
import time
import typing
from collections.abc import Callable, Sequence
from typing import Literal

ProgressMode = Literal["auto", "bar", "log", "none"]
PROGRESS_MODES: tuple[str, ...] = typing.get_args(ProgressMode)  # the CLI's --progress choices


def format_duration(seconds: float) -> str:
    """`1h05m` from an hour on, `3m07s` below (rounded to the second)."""
    seconds = max(int(round(seconds)), 0)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def plural(n: int, word: str) -> str:
    """`1 run`, `2 runs`, `1 worker process`, `2 worker processes`, `1 thread`."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith(("s", "sh", "ch", "x")) else f"{n} {word}s"


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] | None = None, rule: bool = True
) -> str:
    """A fixed-width table: columns in `left` (default: all) are left-aligned, the others right-aligned;
    `rule` puts a line of dashes under the header."""
    left = range(len(header)) if left is None else left
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i in left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    ruler = ["  ".join("-" * w for w in widths)] if rule else []
    return "\n".join([line(header), *ruler, *(line(r) for r in rows)])


def progress_mode(requested: str | bool | None, configured: str) -> str:
    """A caller's request (None = the configured mode, True = auto, False = none) as a mode name."""
    if requested is None:
        return configured
    if isinstance(requested, bool):
        return "auto" if requested else "none"
    return requested


def _resolve_mode(mode: str) -> str:
    """`auto` is a bar on a terminal and plain lines otherwise."""
    if mode == "auto":
        return "bar" if sys.stderr.isatty() else "log"
    return mode


class Progress:
    """Progress over `total` units (steps, examples, runs) with an ETA, as a bar or as periodic lines.

    `update` advances and `tick` only reports (a sweep calls it while its runs train); in log mode a line
    is printed when `every_s` seconds have passed since the last one, and by `close` at the end.
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str,
        unit: str = "step",
        initial: int = 0,
        mode: str = "auto",
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.done, self.desc = total, initial, desc
        self.mode = _resolve_mode(mode)
        self.every_s = every_s
        self.clock = clock
        self.start = self.last_line = clock()
        self.start_done = self.last_done = initial
        self.status = ""
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True, file=sys.stderr
            )

    def eta(self, partial: float = 0.0) -> float | None:
        """Seconds left at the pace of this process so far (None before any progress); `partial` counts
        the unfinished units' done fractions (a sweep's running runs) as progress too."""
        done_here = self.done - self.start_done + partial
        if done_here <= 0:
            return None
        return (self.total - self.done - partial) * (self.clock() - self.start) / done_here

    def update(self, n: int = 1, status: str = "", force: bool = False) -> None:
        """Advance by `n`; `force` prints a log line now (e.g. when a sweep's run ends)."""
        self.done += n
        if self.bar is not None:
            if status:
                self.bar.set_postfix_str(status, refresh=False)
            self.bar.update(n)
        else:
            self.tick(status or None, force=force)

    def extend(self, n: int) -> None:
        """More work turned up (e.g. the misses an evaluation must decode): the total grows by `n`."""
        self.total += n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def tick(self, status: str | None = None, force: bool = False, partial: float = 0.0) -> None:
        """Report without advancing: a plain line if one is due (log mode), the bar's postfix otherwise.
        `status` replaces the shown status (None keeps it)."""
        if status is not None:
            self.status = status
            if self.bar is not None:
                self.bar.set_postfix_str(status)
        if self.mode != "log":
            return
        now = self.clock()
        if not force and now - self.last_line < self.every_s:
            return
        self.last_line, self.last_done = now, self.done
        pct = 100 * self.done / self.total if self.total else 100.0
        eta = self.eta(partial)
        parts = [f"{self.desc} {self.done}/{self.total} ({pct:.0f}%)", self.status]
        parts.append(f"elapsed {format_duration(now - self.start)}")
        if eta is not None and self.done < self.total:
            parts.append(f"eta {format_duration(eta)}")
        self.message(" ".join(p for p in parts if p))

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.mode != "none":
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        """End the bar, or print the closing line (in log mode, if work was done since the last one)."""
        if self.bar is not None:
            self.bar.close()
        elif self.done != self.last_done:
            self.tick(force=True)


QUOTE_CHARS = 80  # the most of a value an error message shows


def clip(text: str, limit: int = QUOTE_CHARS) -> str:
    """`text` if it is short, else its start and end around `…` and its length: an error message never
    echoes unbounded input (a value can be megabytes long)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}…{text[-10:]} ({len(text):,} characters)"


class _Quote(reprlib.Repr):
    """`repr` that stops early: a few items of a collection, a few levels, the ends of a long string."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong = 3, QUOTE_CHARS, QUOTE_CHARS, 40
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:  # str() of a huge integer is slow, and refused past 4,300 digits
            return f"<an integer of {x.bit_length():,} bits>"
        return super().repr_int(x, level)


def quoted(value: object) -> str:
    """`value` as an error message quotes it: its repr, cut short however large the value (`clip`), and
    built without walking more than a few items of it."""
    return clip(_Quote().repr(value))
