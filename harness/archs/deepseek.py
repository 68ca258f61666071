"""DeepSeekMoE: shared experts (one gated FFN of `shared_experts` x I) plus routed experts.

Built here through transformers' DeepSeek-V2 class, the in-library class with shared experts;
its latent attention (MLA) has a q_proj of a Llama's shape when `q_lora_rank` is None, but
keys and values come through a low-rank `kv_b_proj`, so only q_proj and o_proj are shared
with a Llama. Its first layers may be dense (`first_k_dense_replace`): the view reads both.
"""

from __future__ import annotations

from harness.archs.ffn import FFNView, attention_weights, check_claimed, fused_experts, gated, identity
from harness.archs.olmo import DENSE

MODEL_TYPES = ("deepseek_v2",)
NORMS = ("input_layernorm", "post_attention_layernorm")
REQUIRED = ("layers", "hidden", "ffn", "heads", "experts", "top_k", "shared_experts")
ATTENTION = ("q_proj", "o_proj")
MOE = {"gate.weight", "experts.gate_up_proj", "experts.down_proj"} | {f"shared_experts.{n}" for n in DENSE}


def config(name, spec, vocab_size, max_positions, special_ids=None):
    from transformers import DeepseekV2Config

    from harness.archs import common_config

    head_dim = spec["hidden"] // spec["heads"]
    # DeepSeekMoE-16B has plain attention; V2's latent attention is the closest in-library
    # class with shared experts, so its MLA sizes are set to the head size.
    return DeepseekV2Config(intermediate_size=spec["ffn"] * spec["experts"] // spec["top_k"],
                            moe_intermediate_size=spec["ffn"], n_routed_experts=spec["experts"],
                            num_experts_per_tok=spec["top_k"], n_shared_experts=spec["shared_experts"],
                            first_k_dense_replace=0, kv_lora_rank=head_dim * 2, q_lora_rank=None,
                            qk_rope_head_dim=head_dim // 2, qk_nope_head_dim=head_dim // 2,
                            v_head_dim=head_dim, topk_method="greedy", n_group=1, topk_group=1,
                            **common_config(name, spec, vocab_size, max_positions, special_ids))


def ffn(mlp, where: str, view=identity) -> FFNView:
    if not hasattr(mlp, "experts"):  # a dense layer (first_k_dense_replace)
        check_claimed(mlp, DENSE, where, "deepseek")
        return FFNView(dense=gated(mlp, view))
    check_claimed(mlp, MOE, where, "deepseek")
    return FFNView(shared=gated(mlp.shared_experts, view), routed=fused_experts(mlp, view))


def attention(attn, view=identity):
    return attention_weights(attn, ATTENTION, view)
