"""Source architectures: one adapter file each, looked up by name like methods are.

An adapter is a module with
- `REQUIRED`: the shape keys a source built here needs (read at config validation, no torch);
- `MODEL_TYPES`: the `config.model_type`s of the checkpoints it reads;
- `config(name, spec, vocab_size, max_positions, special_ids)`: a tiny source's transformers config;
- `ffn(mlp, where, view)`: the layer's FFN as an `FFNView` (harness/models/archs/ffn.py), refusing
  parameters it does not read;
- `attention(attn, view)`: {Llama projection name (`q_proj`, ...): weight} of the attention
  projections it shares with a Llama, in a Llama's layout;
- `NORMS`: the Llama-named decoder-layer norms it has with a weight (`input_layernorm`, ...);
- optionally `CHECKPOINTS`: {config.model_type: "module:function"} of checkpoint layouts it
  converts into its class on load (DeepSeekMoE's own; `harness.models.sources.Source.load`).

Adding an architecture is one file here plus one line in `ARCHS` (or an entry point in the
`harness.models.archs` group, value "module"), and its shape in the config.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.api.plugins import Registry

if TYPE_CHECKING:
    from torch import Tensor

ARCHS = {
    "olmo": "harness.models.archs.olmo",          # dense (OLMo-7B-hf)
    "olmoe": "harness.models.archs.olmoe",        # standard MoE (OLMoE-1B-7B)
    "deepseek": "harness.models.archs.deepseek",  # shared + routed experts (DeepSeekMoE, in ERNIE-4.5-MoE's class)
    "llama": "harness.models.archs.llama",        # the students, and a twin of a student shape (the controls)
}


REGISTRY = Registry("architecture", "harness.models.archs", lambda: ARCHS)


def arch_names() -> list[str]:
    return sorted(REGISTRY.names())


def adapter(arch: str) -> ModuleType:
    """The adapter module registered as `arch`; unknown names are a one-line error."""
    return REGISTRY.load(arch)


def adapter_for(model) -> ModuleType:
    """The adapter of a loaded model, by its `config.model_type`."""
    model_type = model.config.model_type
    for name in REGISTRY.names():
        module = adapter(name)
        if model_type in module.MODEL_TYPES:
            return module
    raise HarnessError(f"no architecture adapter reads model type {model_type!r} "
                       f"(adapters: {', '.join(arch_names())}); add one in harness/models/archs/")


def ffn_view(model, layer: int, view=None):
    """`FFNView` of decoder layer `layer` of `model`; `view` maps each parameter first (e.g. to its sensitivity)."""
    from harness.models.archs.ffn import identity

    return adapter_for(model).ffn(model.model.layers[layer].mlp, f"model.layers.{layer}.mlp", view or identity)


def ffn_views(model, view=None) -> list:
    """`ffn_view` of every decoder layer of `model`."""
    return [ffn_view(model, l, view) for l in range(len(model.model.layers))]


def attention_weights(model, layer: int, view=None) -> dict[str, Tensor]:
    """{Llama projection name: weight} of layer `layer`'s attention, for the projections the
    architecture shares with a Llama, in a Llama's layout."""
    from harness.models.archs.ffn import identity

    return adapter_for(model).attention(model.model.layers[layer].self_attn, view or identity)


def norm_weights(model, layer: int) -> dict[str, Tensor]:
    """{Llama norm name: weight} of layer `layer`'s norms that carry a weight."""
    block = model.model.layers[layer]
    return {n: getattr(block, n).weight for n in adapter_for(model).NORMS}


# How a MoE source computes its experts (transformers' `experts_implementation`): one grouped matmul
# for all experts, measured fastest on CPU by `python -m harness bench-moe` (OLMoE-micro: grouped_mm
# 0.26 s a step, eager 0.29, batched_mm 6.3; docs/measurements/2026-12-07-moe-experts.md) and what
# transformers picks on a GPU where it dispatches; every implementation gives the same logits and
# gradients (tests/models/test_archs.py). A source's `experts_implementation` overrides it.
EXPERTS_IMPLEMENTATIONS = ("grouped_mm", "eager", "batched_mm")
EXPERTS_IMPLEMENTATION = "grouped_mm"


def common_config(name: str, spec: dict[str, Any], vocab_size: int, max_positions: int,
                  special_ids: dict[str, int] | None) -> dict[str, Any]:
    """The config fields every architecture here shares (untied embeddings, as the paper's models)."""
    if spec["hidden"] % spec["heads"]:
        raise HarnessError(f"shape {name!r}: hidden {spec['hidden']} is not divisible by heads {spec['heads']}")
    return dict(vocab_size=vocab_size, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                num_attention_heads=spec["heads"], num_key_value_heads=spec["heads"],
                max_position_embeddings=max_positions, tie_word_embeddings=False, **(special_ids or {}))


def moe_config(spec: dict[str, Any]) -> dict[str, Any]:
    """What a MoE architecture's config adds to `common_config`: how its experts compute."""
    return {"experts_implementation": spec.get("experts_implementation", EXPERTS_IMPLEMENTATION)}
