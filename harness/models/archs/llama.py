"""Llama: the students, and a source of a student's shape (the controls' twin)."""

from __future__ import annotations

from harness.models.archs.ffn import FFNView, attention_weights, check_claimed, gated, identity
from harness.models.archs.olmo import ATTENTION, DENSE

MODEL_TYPES = ("llama",)
NORMS = ("input_layernorm", "post_attention_layernorm")
REQUIRED = ("layers", "hidden", "ffn", "heads")


def config(name, spec, vocab_size, max_positions, special_ids=None):
    from harness.models.build import student_config

    return student_config(name, spec, vocab_size, max_positions, special_ids)


def ffn(mlp, where: str, view=identity) -> FFNView:
    check_claimed(mlp, DENSE, where, "llama")
    return FFNView(dense=gated(mlp, view))


def attention(attn, view=identity):
    return attention_weights(attn, ATTENTION, view)
