"""Neurons of a decoder layer, and their static attribution through the logit lens.

One view serves every architecture of the grid (`harness.models.archs`). A layer's FFN
is a *pool* of neurons: the dense FFN's, or every expert's side by side (shared
experts first, then routed experts 0..E-1), so neuron i has a gate row, an up
row and a down column, and its output at a token is `coef_i * act(gate_i x) *
(up_i x)` with coef the token's routing weight for a routed expert (0 when not
routed) and 1 otherwise. The attention's neurons are the inputs of o_proj: neuron n of the
concatenated heads writes `s_n * W_o[:, n]`, with `s` the attention-weighted
value; the sum over n is the attention output exactly (Yu & Ananiadou 2024;
LaTen's appendix A.2).

Attribution (LaTen, docs/methods.md): with the final norm's scale fixed
at its value on the last position, the lens `h -> lm_head(norm(h))` is linear,
and a component v of the residual h scores `log p(y | h + v) - log p(y | h)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from harness.models.archs import ffn_views
from harness.errors import HarnessError


def attention_value_rows(attn, n_neurons: int) -> Tensor | None:
    """Row of v_proj each attention neuron reads its value from (heads sharing a key/value head
    share rows), or None for attention without a v_proj."""
    if not hasattr(attn, "v_proj"):
        return None
    v_rows = attn.v_proj.weight.shape[0]
    head_dim = v_rows // attn.config.num_key_value_heads
    heads_per_kv = n_neurons // v_rows
    n = torch.arange(n_neurons)
    head, j = n // head_dim, n % head_dim
    return (head // heads_per_kv) * head_dim + j


class LogitLens:
    """`lm_head(norm(h))` with the norm's scale frozen at its value on `x_final`, the last layer's
    output at the attributed position: linear in h, and exact at h = x_final."""

    def __init__(self, model, x_final: Tensor):
        norm = model.model.norm
        self.center = not hasattr(norm, "weight")  # OLMo's final norm is a parameter-free LayerNorm
        x = x_final.float()
        if self.center:
            var = x.var(unbiased=False)
            eps = 1e-5
        else:
            var = x.pow(2).mean()
            eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
        self.scale = torch.rsqrt(var + eps)
        self.weight = norm.weight.float() if hasattr(norm, "weight") else None
        self.unembed = model.get_output_embeddings().weight.float()

    def __call__(self, h: Tensor) -> Tensor:
        """Logits of residual vectors h (..., H)."""
        h = h.float()
        if self.center:
            h = h - h.mean(-1, keepdim=True)
        h = h * self.scale
        if self.weight is not None:
            h = h * self.weight
        return h @ self.unembed.T


def component_scores(lens: LogitLens, h: Tensor, vectors: Tensor, target: int, chunk: int = 1024) -> Tensor:
    """log p(target | h + v) - log p(target | h) for each row v of `vectors` (K, H)."""
    base = lens(h)
    base_lp = torch.log_softmax(base, -1)[target]
    out = []
    for part in vectors.split(chunk):
        logits = base + lens(part)
        out.append(torch.log_softmax(logits, -1)[:, target] - base_lp)
    return torch.cat(out) if out else torch.zeros(0)


@dataclass
class Attribution:
    """One example's scores: per layer, the whole attention / FFN output and each neuron."""

    attn_layer: Tensor  # (L,)
    ffn_layer: Tensor  # (L,)
    attn: list[Tensor]  # per layer (n_attn,)
    ffn: list[Tensor]  # per layer (P_l,)


def model_pools(model) -> list[dict[str, Tensor]]:
    """The neuron pool of every layer's FFN: build once per model and pass to `attribute` for many examples."""
    return [view.pool() for view in ffn_views(model)]


@torch.no_grad()
def attribute(model, input_ids: list[int], target: int, pools: list[dict[str, Tensor]] | None = None) -> Attribution:
    """Static attribution of every layer and neuron to predicting `target` after `input_ids`
    (`pools`: the model's `model_pools`, when attributing several examples)."""
    if not input_ids:
        raise HarnessError("attribution needs at least one context token before the target")
    layers = model.model.layers
    grabbed: dict[tuple[str, int], Tensor] = {}

    def last(value):  # batch row 0, last position
        return (value[0] if isinstance(value, tuple) else value)[0, -1].detach()

    def on_input(key):
        return lambda module, args, kwargs: grabbed.__setitem__(key, last(args[0] if args else kwargs["hidden_states"]))

    def on_output(key):
        return lambda module, args, output: grabbed.__setitem__(key, last(output))

    handles = [model.model.norm.register_forward_pre_hook(on_input(("final", 0)), with_kwargs=True)]
    for l, layer in enumerate(layers):
        handles += [layer.register_forward_pre_hook(on_input(("in", l)), with_kwargs=True),
                    layer.self_attn.register_forward_hook(on_output(("attn", l))),
                    layer.self_attn.o_proj.register_forward_pre_hook(on_input(("s", l)), with_kwargs=True),
                    layer.mlp.register_forward_pre_hook(on_input(("x", l)), with_kwargs=True),
                    layer.mlp.register_forward_hook(on_output(("ffn", l)))]
    try:
        model(input_ids=torch.tensor([input_ids], device=model.device))
    finally:
        for h in handles:
            h.remove()
    lens = LogitLens(model, grabbed[("final", 0)])
    views = ffn_views(model)
    pools = pools or [view.pool() for view in views]
    attn_layer, ffn_layer, attn, ffn = [], [], [], []
    for l, layer in enumerate(layers):
        h_in, a = grabbed[("in", l)], grabbed[("attn", l)]
        resid = h_in + a
        attn_layer.append(component_scores(lens, h_in, a[None], target)[0])
        ffn_layer.append(component_scores(lens, resid, grabbed[("ffn", l)][None], target)[0])
        s = grabbed[("s", l)]
        attn.append(component_scores(lens, h_in, (layer.self_attn.o_proj.weight * s).T, target))
        m = views[l].activations(grabbed[("x", l)][None])[0]
        ffn.append(component_scores(lens, resid, (pools[l]["down"] * m).T, target))
    return Attribution(torch.stack(attn_layer), torch.stack(ffn_layer), attn, ffn)


def top_layers(scores: Tensor, k: int) -> list[int]:
    """Indices of the k highest-scoring layers, in layer order."""
    if k > len(scores):
        raise HarnessError(f"cannot keep {k} layers of a {len(scores)}-layer model")
    return sorted(torch.topk(scores, k).indices.tolist())


def top_neurons(scores: Tensor, k: int) -> Tensor:
    if k > len(scores):
        raise HarnessError(f"cannot keep {k} neurons of a layer with {len(scores)}")
    return torch.topk(scores, k).indices
