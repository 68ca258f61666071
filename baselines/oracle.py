"""Positive controls: a same-shape twin that knows the world, copied into the student.

The twin is a source of architecture `llama` with the student's shape
(`sources.twin: {arch: llama, shape: <student shape>}`), pre-trained like every
source. A benchmark that cannot show these rows above Scratch cannot show
anything (docs/signal.md, criteria A4, A5, A7):

- `oracle`: the twin copied whole (the most a transfer can give);
- `oracle-no-ffn`: every weight but the FFNs (the graded control, between the two);
- `oracle-ffn`: only the twin's FFN weights, on the seed's random init, exactly
  Scratch's other weights (the ceiling of any FFN-only transfer such as MASA's).

The knowledge map (`signal.map`, reports/knowledge_map.md) asks where in the twin the
transferable knowledge lives, one part at a time on Scratch's init: `embed` (the token
embeddings and the LM head), `attention`, `norms`, `ffn-embed` (the FFNs with the basis they
were trained in), and `ffn-spectrum`: each FFN weight with the twin's singular values and
random singular vectors, so that what the FFNs carry in their scale and spectrum alone is
told from what they carry in their content (MASA's SVD keeps both).

Each row is then pre-trained, fine-tuned and evaluated like any other row.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.api.method import resolve_options

SHAPE_KEYS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads")


def _is_ffn(name: str) -> bool:
    return ".mlp." in name


def _is_embed(name: str) -> bool:
    return "embed_tokens" in name or name.startswith("lm_head")


# which of the twin's weights the student gets, by name (a Llama's parameter names)
PARTS = {
    "all": lambda n: True,
    "ffn": _is_ffn,
    "no-ffn": lambda n: not _is_ffn(n),
    "embed": _is_embed,
    "attention": lambda n: ".self_attn." in n,
    "norms": lambda n: n.endswith("norm.weight"),
    "ffn-embed": lambda n: _is_ffn(n) or _is_embed(n),
    "ffn-spectrum": _is_ffn,  # the FFN weights' singular values only (`spectrum_only`)
}


def spectrum_only(weight, generator):
    """`weight`'s singular values on random orthonormal singular vectors: U diag(s) Vᵀ with U, V
    the Q factors of Gaussian matrices (Haar-distributed), drawn from `generator`."""
    import torch

    s = torch.linalg.svdvals(weight.double())
    rows, cols = weight.shape
    k = s.numel()
    u, _ = torch.linalg.qr(torch.randn(rows, k, generator=generator, dtype=torch.float64))  # (rows, k)
    v, _ = torch.linalg.qr(torch.randn(cols, k, generator=generator, dtype=torch.float64))  # (cols, k)
    return ((u * s) @ v.T).to(weight.dtype)


class Oracle:
    label = "Oracle"
    DEFAULTS = {"copy": "all"}  # a key of PARTS: which of the twin's weights the student gets

    def init_student(self, config, artifact, ctx):
        from harness.models.build import build_model

        opts = resolve_options(self.name, self.DEFAULTS, ctx)
        if opts["copy"] not in PARTS:
            raise HarnessError(f"{self.name}: unknown copy {opts['copy']!r}; use one of {', '.join(PARTS)}")
        if ctx.source is None:
            raise HarnessError(f"{self.name} needs a source: a twin of the student's shape (`arch: llama`)")
        twin = ctx.source.load()
        differ = [k for k in SHAPE_KEYS if getattr(twin.config, k, None) != getattr(config, k, None)]
        if differ:
            k = differ[0]
            raise HarnessError(f"{self.name}: source {ctx.source.name!r} has {k} {getattr(twin.config, k, None)}, "
                               f"the student {getattr(config, k, None)}: the twin must have the student's shape")
        student = build_model(config, ctx.seed)
        keep = PARTS[opts["copy"]]
        weights = {n: w for n, w in twin.state_dict().items() if keep(n)}
        if opts["copy"] == "ffn-spectrum":
            import torch

            generator = torch.Generator().manual_seed(ctx.seed)
            weights = {n: spectrum_only(w, generator) for n, w in sorted(weights.items())}
        missing, unexpected = student.load_state_dict(weights, strict=False)
        if unexpected:
            raise HarnessError(f"{self.name}: the twin has weights the student lacks ({unexpected[0]})")
        return student
