"""Thin adapters from rewritelab's data, verifier and metrics to the LLM training stack, each behind its
optional extra (see the README's extras table); the core never imports this package (only
`rewritelab generate --format verl|lm-eval` loads those two writers, on demand).

Import the module you need (each one imports its own third-party package):
    gym       procedural datasets in reasoning-gym's protocol, registered with reasoning-gym when installed
    trl       TRL: the chat export as an SFT dataset, LoRA settings, and a GRPO reward built on the verifier
    lm_eval   lm-evaluation-harness: the task files `generate --format lm-eval` writes call these functions
    verl      verl: the parquet rows of `generate --format verl` and a `compute_score` for its reward manager

The two writers `generate` calls are exported here: their modules import no third-party package at the top.
"""

from rewritelab.integrations.lm_eval import write_tasks
from rewritelab.integrations.verl import write_verl

__all__ = ["write_tasks", "write_verl"]
