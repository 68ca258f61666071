"""OLMo (OLMo-7B-hf): a dense gated FFN; attention q/k/v/o like a Llama's."""

from __future__ import annotations

from harness.models.archs.ffn import FFNView, attention_weights, check_claimed, gated, identity

MODEL_TYPES = ("olmo",)
NORMS = ()  # OLMo's LayerNorms have no parameters
REQUIRED = ("layers", "hidden", "ffn", "heads")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
DENSE = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"}


def config(name, spec, vocab_size, max_positions, special_ids=None):
    from transformers import OlmoConfig

    from harness.models.archs import common_config

    return OlmoConfig(intermediate_size=spec["ffn"], **common_config(name, spec, vocab_size, max_positions, special_ids))


def ffn(mlp, where: str, view=identity) -> FFNView:
    check_claimed(mlp, DENSE, where, "olmo")
    return FFNView(dense=gated(mlp, view))


def attention(attn, view=identity):
    return attention_weights(attn, ATTENTION, view)
