"""OLMoE (OLMoE-1B-7B): routed experts only (fused `gate_up_proj`), top-k softmax router;
attention q/k/v/o like a Llama's plus QK-norm (which a Llama lacks)."""

from __future__ import annotations

from harness.models.archs.ffn import FFNView, attention_weights, check_claimed, fused_experts, identity

MODEL_TYPES = ("olmoe",)
NORMS = ("input_layernorm", "post_attention_layernorm")
REQUIRED = ("layers", "hidden", "ffn", "heads", "experts", "top_k")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ROUTED = {"gate.weight", "experts.gate_up_proj", "experts.down_proj"}


def config(name, spec, vocab_size, max_positions, special_ids=None):
    from transformers import OlmoeConfig

    from harness.models.archs import common_config, moe_config

    return OlmoeConfig(intermediate_size=spec["ffn"], num_experts=spec["experts"], num_experts_per_tok=spec["top_k"],
                       **common_config(name, spec, vocab_size, max_positions, special_ids), **moe_config(spec))


def ffn(mlp, where: str, view=identity) -> FFNView:
    check_claimed(mlp, ROUTED, where, "olmoe")
    return FFNView(routed=fused_experts(mlp, view))


def attention(attn, view=identity):
    return attention_weights(attn, ATTENTION, view)
