"""Scratch: a randomly initialised student, no knowledge inherited (paper section 4.1).

It implements no hook: random init, plain cross-entropy pre-training and an
unchanged model before SFT are the `Method` defaults. `ScratchReinit` is the
A/A control beside it.
"""

from harness.api.method import resolve_options


class Scratch:
    label = "Scratch"


class ScratchReinit:
    """The A/A control: Scratch with another stream of initial weights and the same data order
    (pre-training and SFT batches follow the seed). Its difference to Scratch is the noise floor
    of a paired comparison: its interval must contain 0 (docs/signal.md A6)."""

    label = "Scratch (A/A)"
    DEFAULTS = {"init_stream": 1}  # torch seed of the initial weights: seed + 1_000_000 * init_stream

    def init_student(self, config, artifact, ctx):
        from harness.models.build import build_model

        opts = resolve_options(self.name, self.DEFAULTS, ctx)
        return build_model(config, ctx.seed + 1_000_000 * int(opts["init_stream"]))
