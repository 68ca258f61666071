"""Seeking Neural Nuggets (Zhong et al., ICLR 2024): LoRA started from the source's most
task-sensitive sub-matrices (docs/methods.md).

1. Sensitivity `S += |theta * dL/dtheta|` of the source, summed over `samples` seed examples
   of the task (one forward/backward each, loss on the response only, no normalisation).
2. A source layer's score is the sum of S over its parameters; the top L_student layers,
   in depth order, feed student layers 0..L_student-1.
3. Per module, the contiguous block of the student's size with the largest summed S
   (first maximum in row-major order; head boundaries ignored). Routed experts count as
   one wide FFN (the neuron pool of `harness.models.archs.ffn`), so MoE sources work like dense ones.
4. B = U_r diag(S_r), A = V_r^T from the block's SVD; the base weights are offset by BA,
   so the student computes exactly what it did before adaptation (section 1.6: the source
   only chooses where LoRA fine-tuning starts).

Modules the source lacks (an attention without k_proj/v_proj) keep PEFT's
zero-B LoRA; the adapt log lists them. Layer scores match `layers.{l}.` exactly, not the
reference's substring `layers.{l}`, which also counts layer 1's score into layers 10-19.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from harness.models import lora
from harness.data.batches import IGNORE, encode_pair
from harness.errors import HarnessError
from harness.api.method import frozen_source, resolve_options
from harness.models.archs import attention_weights, ffn_view
from harness.models.neurons import top_layers

DEFAULTS = {**lora.DEFAULTS, "samples": 32, "max_len": 2048}
FFN = {"gate_proj": "gate", "up_proj": "up", "down_proj": "down"}


def seed_pairs(records: list[dict], n: int) -> list[dict]:
    """The task's seed samples: a fixed draw of n train records (the reference's fixed 32-line files)."""
    if not records:
        raise HarnessError("seeking: the task has no train records")
    order = np.random.default_rng(0).permutation(len(records))
    return [records[i] for i in order[:n]]


def sensitivity(model, batches: list[dict[str, Tensor]], accumulate_on: torch.device | None = None
                ) -> dict[str, Tensor]:
    """{parameter name: sum over batches of |theta * grad|}, each batch one example.

    Each gradient is folded into its fp32 sum as soon as backward has produced it, then
    freed, so at most one parameter's gradient is alive at a time. The sums live on
    `accumulate_on`: the CPU when the model is on a GPU (a 7B source's sums take 28 GB)."""
    params = dict(model.named_parameters())
    if accumulate_on is None:
        device = next(model.parameters()).device
        accumulate_on = torch.device("cpu") if device.type == "cuda" else device
    total = {name: torch.zeros(p.shape, dtype=torch.float32, device=accumulate_on) for name, p in params.items()}
    flags = {name: p.requires_grad for name, p in params.items()}

    def fold(name: str):
        def hook(p: Tensor) -> None:
            total[name] += (p.detach().float() * p.grad.float()).abs().to(accumulate_on)
            p.grad = None
        return hook

    model.zero_grad(set_to_none=True)
    model.requires_grad_(True)
    handles = [p.register_post_accumulate_grad_hook(fold(name)) for name, p in params.items()]
    try:
        for batch in tqdm(batches, desc="sensitivity", unit="example", mininterval=2.0):
            model(**batch).loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        for name, p in params.items():
            p.requires_grad_(flags[name])
    return total


def example_batch(tokenizer, record_pair: tuple[str, str], max_len: int, device) -> dict[str, Tensor]:
    prompt, response = encode_pair(tokenizer, *record_pair)
    response = response + [tokenizer.eos_token_id]
    ids = (prompt + response)[-max_len:]
    labels = ([IGNORE] * len(prompt) + response)[-max_len:]
    return {"input_ids": torch.tensor([ids], device=device), "labels": torch.tensor([labels], device=device)}


def layer_scores(sens: dict[str, Tensor], n_layers: int) -> Tensor:
    """Sum of S over every parameter of each decoder layer (norms and routers included)."""
    scores = torch.zeros(n_layers, dtype=torch.float64)
    for name, s in sens.items():
        parts = name.split(".")
        if "layers" in parts:
            scores[int(parts[parts.index("layers") + 1])] += s.double().sum()
    return scores


def best_block(scores: Tensor, rows: int, cols: int) -> tuple[int, int]:
    """Top-left corner of the rows x cols block of `scores` with the largest sum, first in
    row-major order among ties, via a summed-area table (all offsets at once)."""
    m, n = scores.shape
    if rows > m or cols > n:
        raise HarnessError(f"seeking: a {rows} x {cols} student block does not fit in a {m} x {n} source matrix")
    sat = torch.zeros(m + 1, n + 1, dtype=torch.float64)
    sat[1:, 1:] = scores.double().cumsum(0).cumsum(1)
    sums = sat[rows:, cols:] - sat[:-rows, cols:] - sat[rows:, :-cols] + sat[:-rows, :-cols]
    flat = int(torch.argmax(sums.reshape(-1)))  # torch.argmax returns the first maximum
    return divmod(flat, sums.shape[1])


def lora_factors(block: Tensor, rank: int, scaling: float) -> tuple[Tensor, Tensor]:
    """(B, A) with scaling * B @ A the best rank-r approximation of `block`: B = U_r S_r, A = V_r^T."""
    if rank > min(block.shape):
        raise HarnessError(f"seeking: LoRA rank {rank} exceeds the {tuple(block.shape)} block's smaller side")
    U, S, Vh = torch.linalg.svd(block.double(), full_matrices=False)
    return (U[:, :rank] * S[:rank] / scaling).float(), Vh[:rank].float()


def source_matrices(source, layer: int, view) -> dict[str, Tensor]:
    """The source's matrices of one layer under `view` (weights or sensitivities), keyed by
    the student module they seed; absent modules are left out."""
    out = attention_weights(source, layer, view)
    pool = ffn_view(source, layer, view).pool()
    out.update({name: pool[kind] for name, kind in FFN.items()})
    return out


def _global_matrices(source, view) -> dict[str, Tensor]:
    # the reference searches the embedding transposed (hidden x vocab), like the LoRA's B @ A
    return {"embed_tokens": view(source.get_input_embeddings().weight).T, "lm_head": view(source.lm_head.weight)}


class Seeking:
    label = "Seeking"

    def adapt(self, student, task, ctx):
        from harness.data.tasks import sft_pair

        o = resolve_options(self.name, DEFAULTS, ctx)
        source, tok = frozen_source(self.name, ctx)
        records = seed_pairs(task.records("train"), o["samples"])
        sens = sensitivity(source, [example_batch(tok, sft_pair(r), o["max_len"], ctx.device) for r in records])
        by_param = {p: sens[name] for name, p in source.named_parameters()}
        weights = {p: p.detach() for p in by_param}

        n_student = student.config.num_hidden_layers
        kept = top_layers(layer_scores(sens, source.config.num_hidden_layers), n_student)
        model = lora.attach(student, o["rank"], o["alpha"], o["dropout"], o["modules"], init="zero")
        # each source layer's matrices built once (an MoE's pool concatenates every expert)
        by_layer = {None: (_global_matrices(source, by_param.get), _global_matrices(source, weights.get))}
        by_layer.update({l: (source_matrices(source, l, by_param.get), source_matrices(source, l, weights.get))
                         for l in kept})
        factors, missing = {}, []
        for name, layer in lora.lora_layers(model).items():
            module = name.rsplit(".", 1)[-1]
            src_layer = None if module in lora.EMBEDDINGS else kept[int(name.split(".")[2])]
            S, W = (m.get(module) for m in by_layer[src_layer])
            if S is None:
                missing.append(name)
                continue
            rows, cols = lora.delta_shape(layer)
            i, j = best_block(S, rows, cols)
            factors[name] = lora_factors(W[i:i + rows, j:j + cols], layer.r[lora.ADAPTER],
                                         layer.scaling[lora.ADAPTER])
        lora.set_factors(model, factors)
        print(f"seeking: source layers {kept} -> student layers 0..{n_student - 1}; "
              f"{len(factors)} LoRA modules seeded" + (f", left at zero (no source module): {missing}" if missing else ""))
        return model
