"""Model builders: Llama students of named shapes, and tiny sources of the paper's
three architectures (dense OLMo, standard MoE OLMoE, shared-expert MoE DeepSeek).

Shapes are plain dicts from the config (`layers`, `hidden`, `ffn`, `heads`),
so a reader sees the sizes in `config/*.yaml`; this module only turns them
into `transformers` configs with the choices the paper states: Llama
architecture, untied embeddings, the source tokenizer's vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PretrainedConfig, PreTrainedModel

from harness.errors import HarnessError

SOURCE_ARCHS = ("olmo", "olmoe", "deepseek", "llama")  # llama: a twin of a student shape (controls)


def _check_heads(name: str, spec: dict[str, Any]) -> None:
    if spec["hidden"] % spec["heads"]:
        raise HarnessError(f"shape {name!r}: hidden {spec['hidden']} is not divisible by heads {spec['heads']}")


def student_config(name: str, spec: dict[str, Any], vocab_size: int, max_positions: int,
                   special_ids: dict[str, int] | None = None) -> LlamaConfig:
    """A Llama config for the student shape `spec` (paper section 4.1: Llama, untied embeddings)."""
    _check_heads(name, spec)
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec["hidden"],
        intermediate_size=spec["ffn"],
        num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"],
        num_key_value_heads=spec["heads"],
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        use_cache=True,
        **(special_ids or {}),
    )


def source_config(name: str, spec: dict[str, Any], vocab_size: int, max_positions: int,
                  special_ids: dict[str, int] | None = None) -> PretrainedConfig:
    """A tiny source config of architecture `spec["arch"]`, built from the in-library classes
    the real checkpoints use (OLMo-7B-hf, OLMoE-1B-7B; DeepSeek-V2 for DeepSeekMoE's shared experts)."""
    if spec.get("arch") == "llama":
        return student_config(name, spec, vocab_size, max_positions, special_ids)
    _check_heads(name, spec)
    common = dict(vocab_size=vocab_size, hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                  num_attention_heads=spec["heads"], num_key_value_heads=spec["heads"],
                  max_position_embeddings=max_positions, tie_word_embeddings=False, **(special_ids or {}))
    arch = spec.get("arch")
    if arch == "olmo":
        from transformers import OlmoConfig
        return OlmoConfig(intermediate_size=spec["ffn"], **common)
    if arch == "olmoe":
        from transformers import OlmoeConfig
        return OlmoeConfig(intermediate_size=spec["ffn"], num_experts=spec["experts"],
                           num_experts_per_tok=spec["top_k"], **common)
    if arch == "deepseek":
        from transformers import DeepseekV2Config
        head_dim = spec["hidden"] // spec["heads"]
        # DeepSeekMoE-16B has plain attention; V2's latent attention is the closest
        # in-library class with shared experts, so its MLA sizes are set to the head size.
        return DeepseekV2Config(intermediate_size=spec["ffn"] * spec["experts"] // spec["top_k"],
                                moe_intermediate_size=spec["ffn"], n_routed_experts=spec["experts"],
                                num_experts_per_tok=spec["top_k"], n_shared_experts=spec["shared_experts"],
                                first_k_dense_replace=0, kv_lora_rank=head_dim * 2, q_lora_rank=None,
                                qk_rope_head_dim=head_dim // 2, qk_nope_head_dim=head_dim // 2,
                                v_head_dim=head_dim, topk_method="greedy", n_group=1, topk_group=1,
                                **common)
    raise HarnessError(f"source {name!r}: unknown arch {arch!r}; known: {', '.join(SOURCE_ARCHS)}")


def build_model(config: PretrainedConfig, seed: int) -> PreTrainedModel:
    """Randomly initialised model of `config`, reproducible from `seed`."""
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def param_count(config: PretrainedConfig) -> int:
    """Parameter count of `config`, built on the meta device so nothing is allocated."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def layer_map(n_source: int, n_student: int, how: str) -> list[int]:
    """Source layer feeding each student layer: `uniform` spreads the student over the
    source's depth (first to last), `first` takes the first n_student layers."""
    if how == "first":
        return [k % n_source for k in range(n_student)]
    if how != "uniform":
        raise HarnessError(f"unknown layer map {how!r}; use uniform or first")
    if n_student == 1:
        return [0]
    return [round(k * (n_source - 1) / (n_student - 1)) for k in range(n_student)]
