"""Shared machinery of the knowledge-inheritance harness.

Models, data, the one training loop, checkpoints, the `Method` protocol and
the CLI (`python -m harness <stage>`). Importing this package is cheap: the
heavy libraries (torch, transformers, lm-eval) are imported by the modules
that need them, so the Snakefile can validate a config in milliseconds.
"""

__version__ = "0.1.0"
