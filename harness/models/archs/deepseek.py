"""DeepSeekMoE (DeepSeekMoE-16B): plain multi-head attention with rotary positions; a dense FFN
in the first `dense_layers` layers, then in every layer shared experts (one gated FFN of
`shared_experts` x I that every token passes) plus routed experts, chosen by a softmax top-k
router whose k weights are not renormalised.

transformers has no class of that name (DeepSeekMoE ships its own model code, and DeepSeek-V2's
in-library class has latent attention), but ERNIE-4.5-MoE's class computes exactly this function:
Llama attention, a dense FFN below `moe_layer_start_index`, shared experts added to softmax top-k
routed experts. Two of its settings make it DeepSeekMoE:
- its router divides the k weights by max(their sum, `moe_norm_min`); the sum of k softmax
  probabilities never exceeds 1, so `moe_norm_min` = 1 divides by 1: no renormalisation
  (`norm_topk_prob: false`, DeepSeekMoE-16B's setting);
- its rotary embedding rotates adjacent pairs (2i, 2i+1) where DeepSeekMoE (like a Llama) rotates
  (i, i + d/2), so each head's q and k rows are stored interleaved (`interleave_heads`). Scores
  q.k are sums over the same pairs, so the attention is unchanged; `attention()` hands methods
  the rows back in a Llama's order.
A real DeepSeekMoE checkpoint (model_type "deepseek") is converted into this class on load
(harness/models/archs/deepseek_checkpoint.py; a test compares the logits with a reference forward
written from DeepSeekMoE's own code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.models.archs.ffn import FFNView, attention_weights, check_claimed, fused_experts, gated, identity
from harness.models.archs.olmo import ATTENTION, DENSE

if TYPE_CHECKING:
    from torch import Tensor

MODEL_TYPES = ("ernie4_5_moe",)
NORMS = ("input_layernorm", "post_attention_layernorm")
REQUIRED = ("layers", "hidden", "ffn", "heads", "experts", "top_k", "shared_experts")
ROUTER = {"gate.weight", "gate.moe_statics.e_score_correction_bias"}  # the bias stays 0 (not trained)
MOE = ROUTER | {"experts.gate_up_proj", "experts.down_proj"} | {f"shared_experts.{n}" for n in DENSE}
NO_RENORMALISATION = 1.0  # moe_norm_min: the k weights' sum is at most 1, so they are divided by 1
ROPE_THETA = 10000.0  # DeepSeekMoE-16B's (ERNIE's class defaults to 500,000)
# checkpoint layouts converted on load, by config.model_type
CHECKPOINTS = {"deepseek": "harness.models.archs.deepseek_checkpoint:load"}


def config(name, spec, vocab_size, max_positions, special_ids=None):
    from transformers import Ernie4_5_MoeConfig

    from harness.models.archs import common_config, moe_config

    # a dense layer as wide as the experts a token passes (routed k + shared), as DeepSeekMoE-16B's
    # first layer is (10,944 ~ 8 x 1,408)
    dense = spec["ffn"] * (spec["top_k"] + spec["shared_experts"])
    return Ernie4_5_MoeConfig(intermediate_size=dense, moe_intermediate_size=spec["ffn"],
                              moe_num_experts=spec["experts"], moe_k=spec["top_k"],
                              moe_num_shared_experts=spec["shared_experts"],
                              moe_layer_start_index=spec.get("dense_layers", 0), moe_layer_end_index=-1,
                              moe_layer_interval=1, moe_norm_min=NO_RENORMALISATION, use_bias=False,
                              rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
                              **common_config(name, spec, vocab_size, max_positions, special_ids), **moe_config(spec))


def ffn(mlp, where: str, view=identity) -> FFNView:
    if not hasattr(mlp, "experts"):  # a dense layer (below moe_layer_start_index)
        check_claimed(mlp, DENSE, where, "deepseek")
        return FFNView(dense=gated(mlp, view))
    check_claimed(mlp, MOE, where, "deepseek")
    shared = gated(mlp.shared_experts, view) if mlp.shared_experts is not None else None
    count = mlp.shared_experts.config.moe_num_shared_experts if shared is not None else 1
    return FFNView(shared=shared, routed=fused_experts(mlp, view), shared_count=count)


def attention(attn, view=identity):
    """q, k, v, o in a Llama's layout: q's and k's rows taken back from the interleaved rotary order."""
    out = attention_weights(attn, ATTENTION, view)
    for name in ("q_proj", "k_proj"):
        out[name] = deinterleave_heads(out[name], attn.head_dim)
    return out


def _pair_order(rows: int, head_dim: int):
    """Row i of the interleaved layout holds row `order[i]` of the Llama layout: within each
    head, position 2j <- j and 2j + 1 <- j + head_dim / 2."""
    import torch

    half = head_dim // 2
    j = torch.arange(half)
    within = torch.stack([j, j + half], dim=1).reshape(-1)
    return (torch.arange(rows // head_dim)[:, None] * head_dim + within).reshape(-1)


def interleave_heads(weight: Tensor, head_dim: int) -> Tensor:
    """A q/k projection's rows from a Llama's rotary layout (i, i + d/2) to ERNIE's (2i, 2i + 1)."""
    return weight[_pair_order(weight.shape[0], head_dim)]


def deinterleave_heads(weight: Tensor, head_dim: int) -> Tensor:
    """The inverse of `interleave_heads`."""
    import torch

    return weight[torch.argsort(_pair_order(weight.shape[0], head_dim))]
