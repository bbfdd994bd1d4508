"""The memory a dataset takes, estimated from its spec before anything is sampled.

A request that cannot fit (10^7 rules and 10^7 examples on a laptop) would otherwise sample for minutes
at several GB before the machine runs out; it is refused at once, with the numbers. The estimate is a
floor (measured: ~320 B per example of 50 characters and ~390 B per rule of 20 + 10 characters while
generating, more while encoding), so a request it refuses cannot fit; one it lets through may still not.
"""

from __future__ import annotations

from pathlib import Path

from rewritelab.data.spec import DatasetSpec
from rewritelab.errors import UserError

EXAMPLE_BYTES = 150  # per example besides its characters: columns, list slots, token offsets
RULE_BYTES = 150  # per rule besides its characters
_CGROUP_FILES = (  # (limit, usage): cgroup v2, then v1
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def estimate_bytes(spec: DatasetSpec) -> int:
    """A floor on the bytes `generate_dataset(spec)` holds: its examples (input and answer, about twice
    the input's characters each) and its rules (pattern and replacement, kept as strings and codes)."""
    examples = spec.train_examples + 2 * spec.test_rules * spec.test_examples_per_rule
    input_chars = (spec.input_len.lo + spec.input_len.hi) / 2
    rule_chars = sum((r.lo + r.hi) / 2 for r in (spec.pattern_len, spec.replacement_len))
    rules = spec.num_rules + spec.test_rules
    return int(examples * (EXAMPLE_BYTES + 2 * input_chars) + rules * (RULE_BYTES + 4 * rule_chars))


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the system's available memory and what its
    cgroup (a container's limit) leaves; None where neither is known (not Linux)."""
    known = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit, usage = (Path(f).read_text().strip() for f in (limit_file, usage_file))
            known.append(int(limit) - int(usage))  # "max" (no limit) is not a number: skipped
            break
        except (OSError, ValueError):
            continue
    return min(known) if known else None


def check_memory(spec: DatasetSpec) -> None:
    """Refuse a dataset whose estimated size exceeds the memory available, naming both numbers."""
    need, have = estimate_bytes(spec), available_memory()
    if have is not None and need > have:
        examples = spec.train_examples + 2 * spec.test_rules * spec.test_examples_per_rule
        raise UserError(
            f"data: {spec.num_rules + spec.test_rules:,} rules and {examples:,} examples need at least "
            f"{need / 1e9:.1f} GB of memory, more than the {max(have, 0) / 1e9:.1f} GB available; lower "
            "data.num_rules and data.budget (or examples_per_rule), or use a machine with more memory"
        )
