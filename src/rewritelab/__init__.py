"""rewritelab: what makes a model follow instructions it never saw in training?

Controlled instruction-tuning experiments on string-rewrite rules (the steps of Markov algorithms):
generate datasets with every knob of the reference study, train small transformers from scratch,
evaluate on unseen instructions, sweep, and report.
"""

__version__ = "0.1.0"
