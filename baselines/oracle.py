"""Positive controls: a same-shape twin that knows the world, copied into the student.

The twin is a source of architecture `llama` with the student's shape
(`sources.twin: {arch: llama, shape: <student shape>}`), pre-trained like every
source. A benchmark that cannot show these rows above Scratch cannot show
anything (`SIGNAL.md` §2, criteria A4, A5, A7):

- `oracle`: the twin copied whole (the most a transfer can give);
- `oracle-no-ffn`: every weight but the FFNs (the graded control, between the two);
- `oracle-ffn`: only the twin's FFN weights, on the seed's random init, exactly
  Scratch's other weights (the ceiling of any FFN-only transfer such as MASA's).

Each row is then pre-trained, fine-tuned and evaluated like any other row.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.method import resolve_options

PARTS = ("all", "ffn", "no-ffn")
SHAPE_KEYS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads")


def _is_ffn(name: str) -> bool:
    return ".mlp." in name


class Oracle:
    label = "Oracle"
    DEFAULTS = {"copy": "all"}  # all | ffn | no-ffn: which of the twin's weights the student gets

    def init_student(self, config, artifact, ctx):
        from harness.models import build_model

        opts = resolve_options(self.name, self.DEFAULTS, ctx)
        if opts["copy"] not in PARTS:
            raise HarnessError(f"{self.name}: unknown copy {opts['copy']!r}; use {', '.join(PARTS)}")
        if ctx.source is None:
            raise HarnessError(f"{self.name} needs a source: a twin of the student's shape (`arch: llama`)")
        twin = ctx.source.load()
        differ = [k for k in SHAPE_KEYS if getattr(twin.config, k, None) != getattr(config, k, None)]
        if differ:
            k = differ[0]
            raise HarnessError(f"{self.name}: source {ctx.source.name!r} has {k} {getattr(twin.config, k, None)}, "
                               f"the student {getattr(config, k, None)}: the twin must have the student's shape")
        student = build_model(config, ctx.seed)
        keep = {"all": lambda n: True, "ffn": _is_ffn, "no-ffn": lambda n: not _is_ffn(n)}[opts["copy"]]
        weights = {n: w for n, w in twin.state_dict().items() if keep(n)}
        missing, unexpected = student.load_state_dict(weights, strict=False)
        if unexpected:
            raise HarnessError(f"{self.name}: the twin has weights the student lacks ({unexpected[0]})")
        return student
