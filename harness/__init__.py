"""Shared machinery of the knowledge-inheritance harness, by concern (docs/workflow.md, the layers):
`api` (the Method protocol and the registries), `analysis` (paired statistics), `data` (the
world, corpus, tokenizer, tasks), `models` (configs, source architectures), `training` (the one
training loop), `stages` (what each workflow stage does), `workflow` (config, grid, reports,
planning) and `cli` (`python -m harness <stage>`). Importing this package is cheap: the heavy
libraries (torch, transformers, lm-eval) are imported by the modules that need them, so the
Snakefile validates a config without them.
"""

__version__ = "0.1.0"
