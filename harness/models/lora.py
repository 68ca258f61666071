"""LoRA adapters through PEFT, and LoRA factors taken from elsewhere (Seeking).

`attach` wraps a student with PEFT's LoRA on the given modules. `init` is one of
PEFT's own initialisations (`gaussian`: A ~ N(0, 1/r), B = 0, the "random
Gaussian" LoRA of the LaTen paper; `pissa`: the top-r SVD of W itself, with W
replaced by the residual) or `zero` for factors that `set_factors` fills in.

`set_factors` writes given (B, A) into the adapters and subtracts their product
from the frozen base weights, so the adapted model computes exactly what the
student computed before (Seeking's `W0' = W0 - BA`, docs/methods.md):
the factors only choose where fine-tuning starts in LoRA space.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from harness.errors import HarnessError

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
EMBEDDINGS = ("embed_tokens", "lm_head")
INITS = {"gaussian": "gaussian", "pissa": "pissa", "kaiming": True, "zero": True}
ADAPTER = "default"

DEFAULTS: dict[str, Any] = {"rank": 16, "alpha": 16, "dropout": 0.05, "modules": list(PROJECTIONS)}


def attach(model, rank: int, alpha: float, dropout: float, modules: list[str], init: str):
    """`model` wrapped in a PeftModel with LoRA on every module whose name ends in one of `modules`."""
    from peft import LoraConfig, get_peft_model

    if init not in INITS:
        raise HarnessError(f"unknown LoRA init {init!r}; use {', '.join(INITS)}")
    unknown = sorted(set(modules) - set(PROJECTIONS) - set(EMBEDDINGS))
    if unknown:
        raise HarnessError(f"LoRA module {unknown[0]!r} is not one of {', '.join(PROJECTIONS + EMBEDDINGS)}")
    if init == "pissa" and set(modules) & set(EMBEDDINGS):
        raise HarnessError("PiSSA init applies to linear layers only; drop embed_tokens/lm_head from `modules`")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(modules),
                        init_lora_weights=INITS[init], bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def lora_layers(peft_model) -> dict[str, Any]:
    """{module name in the base model: PEFT LoRA layer}, e.g. "model.layers.0.self_attn.q_proj"."""
    from peft.tuners.lora import LoraLayer

    base = peft_model.get_base_model()
    return {name: m for name, m in base.named_modules() if isinstance(m, LoraLayer)}


def delta_shape(layer) -> tuple[int, int]:
    """(out, in) of the update B @ A: the weight's for a linear layer, the transposed table's
    (dim, vocab) for an embedding, whose LoRA maps token ids through A (r, V) and B (d, r)."""
    w = layer.base_layer.weight
    return tuple(w.shape[::-1]) if ADAPTER in layer.lora_embedding_A else tuple(w.shape)


@torch.no_grad()
def set_factors(peft_model, factors: dict[str, tuple[Tensor, Tensor]]) -> None:
    """Set each named LoRA layer's (B, A), with B @ A of `delta_shape`, and offset its base
    weight by the scaled product, leaving the model's function unchanged."""
    layers = lora_layers(peft_model)
    for name, (B, A) in factors.items():
        if name not in layers:
            raise HarnessError(f"no LoRA layer {name!r}; LoRA layers: {', '.join(sorted(layers)) or 'none'}")
        layer = layers[name]
        out_dim, in_dim = delta_shape(layer)
        r = layer.r[ADAPTER]
        if B.shape != (out_dim, r) or A.shape != (r, in_dim):
            raise HarnessError(f"{name}: LoRA factors {tuple(B.shape)} x {tuple(A.shape)} do not fit a rank-{r} "
                               f"update of a {out_dim} x {in_dim} weight")
        weight = layer.base_layer.weight
        delta = layer.scaling[ADAPTER] * (B.double() @ A.double())
        if ADAPTER in layer.lora_embedding_A:
            layer.lora_embedding_B[ADAPTER].copy_(B)
            layer.lora_embedding_A[ADAPTER].copy_(A)
            delta = delta.T
        else:
            layer.lora_B[ADAPTER].weight.copy_(B)
            layer.lora_A[ADAPTER].weight.copy_(A)
        weight.copy_((weight.double() - delta).to(weight.dtype))
