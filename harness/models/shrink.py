"""Shrink a Llama to a smaller Llama shape: fewer layers, fewer or narrower heads,
narrower FFNs and residual stream. Used by Pruning-EEP to reach a student's shape.

Depth: whole layers are kept by a layer map (default `uniform`, first and last
kept). Attention: heads are index-selected here, since reshaping heads (16 x 128
-> 32 x 64, say) is a re-indexing torch-pruning cannot express; the unit is a
rotary pair (dims j and j + head_dim/2 of a head, which RoPE rotates together),
so every kept pair stays a pair. FFN width and hidden size: torch-pruning's
dependency graph prunes the coupled channels (all projections, norms,
embeddings, head) with magnitude or Taylor importance.

Importance of a unit is the same for both parts: the squared weights it owns
(`magnitude`) or the squared first-order Taylor terms (w * dL/dw)^2 on
calibration tokens (`taylor`).
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from harness.errors import HarnessError
from harness.models.build import layer_map
from harness.data.vocab import check_rows, truncate_rows

IMPORTANCE = ("magnitude", "taylor")


def _refresh_grads(model, calibration: torch.Tensor, batch: int = 8) -> None:
    model.zero_grad(set_to_none=True)
    model.train()
    for lo in range(0, len(calibration), batch):
        ids = calibration[lo:lo + batch]
        (model(input_ids=ids, labels=ids).loss * len(ids) / len(calibration)).backward()
    model.eval()


def _unit_scores(weight: torch.Tensor, how: str) -> torch.Tensor:
    if how == "magnitude":
        return weight.detach().float() ** 2
    if weight.grad is None:
        raise HarnessError("taylor importance needs gradients; calibration tokens are missing")
    return (weight.detach().float() * weight.grad.float()) ** 2


def head_rows(attn, n_heads: int, head_dim: int, how: str) -> list[int]:
    """Source q/k/v rows (= o_proj columns) forming the new heads, in the new order.

    Fewer heads: the most important heads, in their original order. More heads of a
    smaller head_dim: each head is split into n_heads / n_src consecutive chunks of its
    most important rotary pairs. Within a head the kept pairs stay in index order.
    """
    n_src = attn.config.num_attention_heads
    hd = attn.head_dim
    if hd % 2 or head_dim % 2:
        raise HarnessError(f"head dims must be even for rotary pairs (source {hd}, student {head_dim})")
    score = sum(_unit_scores(m.weight, how).sum(1) for m in (attn.q_proj, attn.k_proj, attn.v_proj))
    score = score + _unit_scores(attn.o_proj.weight, how).sum(0)
    per_dim = score.view(n_src, hd)
    pair = per_dim[:, :hd // 2] + per_dim[:, hd // 2:]  # (n_src, hd/2)
    if n_heads <= n_src:
        heads, per_head = sorted(pair.sum(1).argsort(descending=True, stable=True)[:n_heads].tolist()), 1
    elif n_heads % n_src == 0:
        heads, per_head = list(range(n_src)), n_heads // n_src
    else:
        raise HarnessError(f"cannot make {n_heads} heads from {n_src}: not a multiple")
    half = head_dim // 2
    if per_head * half > hd // 2:
        raise HarnessError(f"cannot make {n_heads} heads of dim {head_dim} from {n_src} heads of dim {hd}")
    rows = []
    for h in heads:
        kept = sorted(pair[h].argsort(descending=True, stable=True)[:per_head * half].tolist())
        for c in range(per_head):
            chunk = kept[c * half:(c + 1) * half]
            rows += [h * hd + j for j in chunk] + [h * hd + hd // 2 + j for j in chunk]
    return rows


def _reheaded(model, target: LlamaConfig, layers: list[int], how: str) -> LlamaForCausalLM:
    """A Llama with the target's depth and heads, the source's hidden and FFN sizes."""
    cfg = model.config
    if cfg.num_key_value_heads != cfg.num_attention_heads:
        raise HarnessError("shrinking grouped-query attention is not supported (num_key_value_heads < heads)")
    head_dim = target.hidden_size // target.num_attention_heads
    mid = LlamaConfig(**{**cfg.to_dict(), "num_hidden_layers": len(layers),
                         "num_attention_heads": target.num_attention_heads,
                         "num_key_value_heads": target.num_attention_heads, "head_dim": head_dim})
    state = {}
    for new, old in enumerate(layers):
        layer = model.model.layers[old]
        rows = torch.tensor(head_rows(layer.self_attn, target.num_attention_heads, head_dim, how))
        for name, t in layer.state_dict().items():
            if name.split(".")[-2] in ("q_proj", "k_proj", "v_proj"):
                t = t[rows]
            elif name.split(".")[-2] == "o_proj":
                t = t[:, rows]
            state[f"model.layers.{new}.{name}"] = t
    for name, t in model.state_dict().items():
        if not name.startswith("model.layers."):
            state[name] = t
    out = LlamaForCausalLM(mid)
    out.load_state_dict(state, strict=True)
    return out


def _prune(dg, module, prune_fn, width: int, target: int, imp) -> None:
    import torch_pruning as tp  # noqa: F401  (the group's pruning functions live there)

    group = dg.get_pruning_group(module, prune_fn, idxs=list(range(width)))
    drop = imp(group).argsort(stable=True)[:width - target].tolist()
    dg.get_pruning_group(module, prune_fn, idxs=drop).prune()


def shrink_llama(model: LlamaForCausalLM, target: LlamaConfig, calibration: torch.Tensor | None = None,
                 layers: str = "uniform", importance: str = "magnitude") -> LlamaForCausalLM:
    """A `LlamaForCausalLM` of exactly `target`'s shape made from `model`'s weights."""
    import torch_pruning as tp

    if importance not in IMPORTANCE:
        raise HarnessError(f"unknown importance {importance!r}; use {' or '.join(IMPORTANCE)}")
    cfg = model.config
    for what, have, want in [("layers", cfg.num_hidden_layers, target.num_hidden_layers),
                             ("hidden size", cfg.hidden_size, target.hidden_size),
                             ("FFN width", cfg.intermediate_size, target.intermediate_size)]:
        if want > have:
            raise HarnessError(f"pruning cannot grow the {what}: {have} -> {want}")
    check_rows("pruning", "the pruned model", cfg.vocab_size, target.vocab_size)
    truncate_rows(model, target.vocab_size)
    if importance == "taylor":
        if calibration is None:
            raise HarnessError("taylor importance needs calibration tokens")
        _refresh_grads(model, calibration)
    model = _reheaded(model, target, layer_map(cfg.num_hidden_layers, target.num_hidden_layers, layers), importance)
    model.config.use_cache = False  # torch-pruning traces a plain forward
    example = (calibration[:1] if calibration is not None else torch.zeros(1, 8, dtype=torch.long))
    dg = tp.DependencyGraph().build_dependency(
        model, example_inputs=example, output_transform=lambda o: o.logits,
        unwrapped_parameters=[(m.weight, 0) for m in model.modules() if type(m).__name__.endswith("RMSNorm")])
    imp = (tp.importance.GroupMagnitudeImportance(p=2) if importance == "magnitude"
           else tp.importance.GroupTaylorImportance())
    if importance == "taylor":
        _refresh_grads(model, calibration)
    for layer in model.model.layers:
        if target.intermediate_size < cfg.intermediate_size:
            _prune(dg, layer.mlp.gate_proj, tp.prune_linear_out_channels, cfg.intermediate_size,
                   target.intermediate_size, imp)
    if target.hidden_size < cfg.hidden_size:
        if importance == "taylor":
            _refresh_grads(model, calibration)
        _prune(dg, model.model.embed_tokens, tp.prune_embedding_out_channels, cfg.hidden_size, target.hidden_size,
               imp)
    student = LlamaForCausalLM(target)
    try:
        student.load_state_dict({k: v.detach() for k, v in model.state_dict().items()}, strict=True)
    except RuntimeError as e:
        raise HarnessError(f"pruned model does not match the student shape: {str(e).splitlines()[1]}") from None
    return student
