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


def student_config(name: str, spec: dict[str, Any], vocab_size: int, max_positions: int,
                   special_ids: dict[str, int] | None = None) -> LlamaConfig:
    """A Llama config for the student shape `spec` (paper section 4.1: Llama, untied embeddings)."""
    from harness.models.archs import common_config

    return LlamaConfig(intermediate_size=spec["ffn"], use_cache=True,
                       **common_config(name, spec, vocab_size, max_positions, special_ids))


def source_config(name: str, spec: dict[str, Any], vocab_size: int, max_positions: int,
                  special_ids: dict[str, int] | None = None) -> PretrainedConfig:
    """A tiny source config of architecture `spec["arch"]`, built by its adapter (harness/models/archs/)
    from the in-library classes the real checkpoints use."""
    from harness.models.archs import adapter

    try:
        build = adapter(spec.get("arch", "")).config
    except HarnessError as e:
        raise HarnessError(f"source {name!r}: {e}") from None
    return build(name, spec, vocab_size, max_positions, special_ids)


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
