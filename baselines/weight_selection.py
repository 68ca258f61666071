"""Weight Selection (Xu et al., ICLR 2024, "Initializing Models with Larger Ones"; docs/methods.md).

Every student tensor is a selection of the source's matching tensor: the same evenly spaced
indices in every dimension (`indices`), layers by a uniform map (first and last kept) or the
first L. The reference (OscarXZQ/weight-selection, timm ViT/ConvNeXt only) has no language
model; here the matching follows the source's architecture adapter (`harness.models.archs`):

| student tensor            | source tensor                                              |
|---------------------------|------------------------------------------------------------|
| embed_tokens, lm_head     | the source's: the student's token rows, columns selected   |
| norms                     | the adapter's norms with a weight (OLMo's have none)       |
| q/k/v/o_proj              | the adapter's Llama-shaped projections (DeepSeek: q, o)    |
| gate/up/down_proj         | the FFN view: dense FFN; for an MoE, `moe_ffn` below       |

Tensors with no source counterpart keep the seed's random init (Scratch's); the stage prints
which. Selection ignores head boundaries, as the reference does for ViT's fused qkv.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.models.archs import attention_weights, ffn_views, norm_weights
from harness.errors import HarnessError
from harness.api.method import resolve_options, source_model
from harness.models.build import layer_map
from harness.data.vocab import check_rows

DEFAULTS = {
    # docs/methods.md: round(i (n-1) / (k-1)), first and last kept ("spread"); the reference's
    # divisible branch takes every (n/k)-th from 0 ("stride": floor(i n / k), last not kept)
    "indices": "spread",
    "layer_map": "uniform",   # the reference's default; "first": the first L layers
    # the reference skips the classifier head (ImageNet's classes are not CIFAR's); an LM's head
    # is the unembedding of the shared vocabulary, so it is selected by default ("skip": random)
    "head": "select",
    # MoE FFN -> a dense one: "pool" selects neurons across every expert side by side (shared
    # first; routing weights dropped); "whole" takes the part every token passes through
    # (DeepSeek's shared experts; a standard MoE such as OLMoE has none and is refused)
    "moe_ffn": "pool",
}
INDICES = ("spread", "stride")
VOCAB_TENSORS = {"model.embed_tokens.weight", "lm_head.weight"}


def selected_indices(n: int, k: int, how: str = "spread") -> list[int]:
    """k evenly spaced indices into a dimension of n (k <= n), integer arithmetic throughout."""
    if not 1 <= k <= n:
        raise HarnessError(f"weight selection: cannot select {k} of {n} elements (the student must not be larger)")
    if how == "stride":
        return [i * n // k for i in range(k)]
    if how != "spread":
        raise HarnessError(f"weight selection: unknown indices {how!r}; use {' or '.join(INDICES)}")
    if k == 1:
        return [0]
    return [(2 * i * (n - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)]  # round half up


def select(weight: Tensor, shape: tuple[int, ...], how: str = "spread") -> Tensor:
    """The elements of `weight` at evenly spaced indices in every dimension, of `shape`."""
    if weight.dim() != len(shape):
        raise HarnessError(f"weight selection: a {tuple(weight.shape)} tensor cannot give a {tuple(shape)} one")
    out = weight
    for dim, (n, k) in enumerate(zip(weight.shape, shape)):
        if n != k:
            out = out.index_select(dim, torch.tensor(selected_indices(n, k, how), device=weight.device))
    return out


def source_tensors(source, n_student_layers: int, opts: dict) -> dict[str, Tensor]:
    """{student parameter name: the source tensor it is selected from}."""
    out = {"model.embed_tokens.weight": source.get_input_embeddings().weight}
    if opts["head"] == "select":
        out["lm_head.weight"] = source.get_output_embeddings().weight
    elif opts["head"] != "skip":
        raise HarnessError(f"weight selection: unknown head {opts['head']!r}; use select or skip")
    final_norm = getattr(source.model.norm, "weight", None)
    if final_norm is not None:
        out["model.norm.weight"] = final_norm
    views = ffn_views(source)
    for k, l in enumerate(layer_map(len(views), n_student_layers, opts["layer_map"])):
        p = f"model.layers.{k}."
        out.update({p + f"{n}.weight": w for n, w in norm_weights(source, l).items()})
        out.update({p + f"self_attn.{n}.weight": w for n, w in attention_weights(source, l).items()})
        ffn = _dense_ffn(views[l], opts["moe_ffn"], l)
        out.update({p + f"mlp.{n}_proj.weight": w for n, w in ffn.items()})
    return out


def _dense_ffn(view, how: str, layer: int) -> dict[str, Tensor]:
    if view.dense is not None:
        return {"gate": view.dense.gate, "up": view.dense.up, "down": view.dense.down}
    if how == "pool":
        return view.pool()
    if how != "whole":
        raise HarnessError(f"weight selection: unknown moe_ffn {how!r}; use pool or whole")
    if view.shared is None:
        raise HarnessError(f"weight selection: layer {layer} of the source has no shared experts for "
                           f"`moe_ffn: whole`; use `moe_ffn: pool`")
    return {"gate": view.shared.gate, "up": view.shared.up, "down": view.shared.down}


class WeightSelection:
    label = "Weight Selection"

    def init_student(self, config, artifact, ctx):
        from harness.models.build import build_model

        opts = resolve_options(self.name, DEFAULTS, ctx)
        source = source_model(self.name, ctx)
        check_rows(self.name, ctx.source.name, source.config.vocab_size, config.vocab_size)
        student = build_model(config, ctx.seed)
        params = dict(student.named_parameters())
        chosen = source_tensors(source, config.num_hidden_layers, opts)
        for name in VOCAB_TENSORS & set(chosen):  # token ids are not spread: a padded vocabulary keeps its prefix
            chosen[name] = chosen[name][:config.vocab_size]
        with torch.no_grad():
            for name, weight in chosen.items():
                params[name].copy_(select(weight.detach(), tuple(params[name].shape), opts["indices"]))
        kept = [n for n in params if n not in chosen]
        print(f"{self.name}: {len(chosen)} of {len(params)} student tensors selected from {ctx.source.name!r}"
              + (f"; at random init: {', '.join(kept)}" if kept else ""))
        return student
