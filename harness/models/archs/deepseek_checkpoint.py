"""DeepSeekMoE checkpoints in their own layout (config.model_type "deepseek", the layout of
deepseek-ai/deepseek-moe-16b-base, whose model code ships with the weights) read into the
in-library host class of harness/models/archs/deepseek.py, and written back. No remote code runs.

The layouts differ in three places: the host fuses each routed expert's gate and up rows into
`experts.gate_up_proj` (E, 2I, H) and stacks `down_proj` (E, H, I); its router carries a
zero score bias; its q and k rows are in the interleaved rotary order. Everything else has the
same name and value. A config setting the host cannot express exactly is refused in one line.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from torch import Tensor

from harness.models.archs.deepseek import NO_RENORMALISATION, deinterleave_heads, interleave_heads
from harness.errors import HarnessError, first_line

MODEL_TYPE = "deepseek"
AUTO_MAP = {"AutoConfig": "configuration_deepseek.DeepseekConfig",
            "AutoModel": "modeling_deepseek.DeepseekModel",
            "AutoModelForCausalLM": "modeling_deepseek.DeepseekForCausalLM"}
EXPERT = re.compile(r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight")
ATTENTION_QK = re.compile(r"model\.layers\.\d+\.self_attn\.[qk]_proj\.weight")
IGNORED = re.compile(r".*rotary_emb\.inv_freq")  # a buffer older checkpoints saved
RENORMALISE_EPS = 1e-20  # DeepSeekMoE divides renormalised weights by (sum + 1e-20)


def host_config(cfg: dict[str, Any], where: str):
    """The ERNIE-4.5-MoE config computing the same function as DeepSeekMoE config `cfg`."""
    from transformers import Ernie4_5_MoeConfig

    def refuse(key, why):
        raise HarnessError(f"{where}: DeepSeekMoE checkpoint with {key} = {cfg.get(key)!r} is not supported ({why})")

    if cfg.get("scoring_func", "softmax") != "softmax":
        refuse("scoring_func", "only softmax routing maps onto the in-library host")
    if cfg.get("moe_layer_freq", 1) != 1:
        refuse("moe_layer_freq", "the host places experts in every layer from the first MoE layer on")
    if cfg.get("attention_bias", False):
        refuse("attention_bias", "the host's bias switch covers every projection, not attention alone")
    if cfg.get("rope_scaling"):
        refuse("rope_scaling", "only plain rotary positions are mapped")
    if cfg.get("hidden_act", "silu") != "silu":
        refuse("hidden_act", "DeepSeekMoE's FFNs are SiLU-gated")
    if not cfg.get("n_routed_experts"):
        refuse("n_routed_experts", "a checkpoint without routed experts is a dense model; load it as one")
    heads = cfg["num_attention_heads"]
    return Ernie4_5_MoeConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        moe_intermediate_size=cfg["moe_intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=heads, num_key_value_heads=cfg.get("num_key_value_heads") or heads,
        moe_num_experts=cfg["n_routed_experts"], moe_k=cfg["num_experts_per_tok"],
        moe_num_shared_experts=cfg.get("n_shared_experts") or 0,
        moe_layer_start_index=cfg.get("first_k_dense_replace", 0), moe_layer_end_index=-1, moe_layer_interval=1,
        moe_norm_min=RENORMALISE_EPS if cfg.get("norm_topk_prob", False) else NO_RENORMALISATION,
        use_bias=False, hidden_act="silu", rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        max_position_embeddings=cfg.get("max_position_embeddings", 4096),
        rope_parameters={"rope_type": "default", "rope_theta": cfg.get("rope_theta", 10000.0)},
        tie_word_embeddings=cfg.get("tie_word_embeddings", False), initializer_range=cfg.get("initializer_range", 0.02),
        pad_token_id=cfg.get("pad_token_id"), bos_token_id=cfg.get("bos_token_id"),
        eos_token_id=cfg.get("eos_token_id"))


def to_host(tensors: Iterable[tuple[str, Tensor]], config, where: str) -> dict[str, Tensor]:
    """The host's state dict from a DeepSeekMoE checkpoint's (name, tensor) pairs, in any order
    (the experts of one layer may span shards)."""
    head_dim = config.hidden_size // config.num_attention_heads
    out: dict[str, Tensor] = {}
    experts: dict[int, dict[int, dict[str, Tensor]]] = defaultdict(lambda: defaultdict(dict))
    for name, t in tensors:
        if IGNORED.fullmatch(name):
            continue
        if m := EXPERT.fullmatch(name):
            experts[int(m[1])][int(m[2])][m[3]] = t
        elif ATTENTION_QK.fullmatch(name):
            out[name] = interleave_heads(t, head_dim)
        else:
            out[name] = t
    n = config.moe_num_experts
    for layer, by_expert in sorted(experts.items()):
        if sorted(by_expert) != list(range(n)) or any(len(p) != 3 for p in by_expert.values()):
            raise HarnessError(f"{where}: layer {layer} holds an incomplete set of expert weights "
                               f"(expected gate, up and down of experts 0..{n - 1})")
        prefix = f"model.layers.{layer}.mlp."
        out[prefix + "experts.gate_up_proj"] = torch.stack(
            [torch.cat([by_expert[e]["gate"], by_expert[e]["up"]]) for e in range(n)])
        out[prefix + "experts.down_proj"] = torch.stack([by_expert[e]["down"] for e in range(n)])
        out[prefix + "gate.moe_statics.e_score_correction_bias"] = torch.zeros(1, n)
    return out


def from_host(model) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(config.json, state dict) of `model` (the host) in DeepSeekMoE's own layout."""
    c = model.config
    head_dim = c.hidden_size // c.num_attention_heads
    if c.moe_norm_min != NO_RENORMALISATION:
        raise HarnessError("only a host without top-k renormalisation is written as DeepSeekMoE-16B's layout")
    cfg = {"architectures": ["DeepseekForCausalLM"], "auto_map": AUTO_MAP, "model_type": MODEL_TYPE,
           "vocab_size": c.vocab_size, "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
           "moe_intermediate_size": c.moe_intermediate_size, "num_hidden_layers": c.num_hidden_layers,
           "num_attention_heads": c.num_attention_heads, "num_key_value_heads": c.num_key_value_heads,
           "n_shared_experts": c.moe_num_shared_experts or None, "n_routed_experts": c.moe_num_experts,
           "num_experts_per_tok": c.moe_k, "moe_layer_freq": 1, "first_k_dense_replace": c.moe_layer_start_index,
           "norm_topk_prob": False, "scoring_func": "softmax", "aux_loss_alpha": 0.001, "seq_aux": True,
           "hidden_act": "silu", "max_position_embeddings": c.max_position_embeddings,
           "initializer_range": c.initializer_range, "rms_norm_eps": c.rms_norm_eps,
           "rope_theta": c.rope_parameters["rope_theta"], "rope_scaling": None, "attention_bias": False,
           "attention_dropout": 0.0, "tie_word_embeddings": c.tie_word_embeddings, "use_cache": True,
           "pad_token_id": c.pad_token_id, "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id,
           "torch_dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
    state = {}
    for name, t in model.state_dict().items():
        t = t.detach()
        if name.endswith("moe_statics.e_score_correction_bias"):
            if t.any():
                raise HarnessError(f"{name} is not zero: DeepSeekMoE's router has no score bias")
            continue
        if name.endswith("experts.gate_up_proj"):
            prefix = name.removesuffix("gate_up_proj")
            for e, fused in enumerate(t):
                gate, up = fused.chunk(2)
                state[f"{prefix}{e}.gate_proj.weight"], state[f"{prefix}{e}.up_proj.weight"] = gate, up
        elif name.endswith("experts.down_proj"):
            prefix = name.removesuffix("down_proj")
            state.update({f"{prefix}{e}.down_proj.weight": d for e, d in enumerate(t)})
        elif ATTENTION_QK.fullmatch(name):
            state[name] = deinterleave_heads(t, head_dim)
        else:
            state[name] = t
    return cfg, {k: v.contiguous() for k, v in state.items()}


def save(model, path: str | Path) -> None:
    """Write `model` (the host) as a DeepSeekMoE checkpoint: config.json and model.safetensors."""
    from safetensors.torch import save_file

    from harness.io import atomic_dir, atomic_write_json

    cfg, state = from_host(model)
    with atomic_dir(path) as tmp:
        atomic_write_json(tmp / "config.json", cfg)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})


def weight_files(model_path: str) -> list[Path]:
    """The checkpoint's weight files, local or fetched from the hub (safetensors preferred)."""
    local = Path(model_path)
    if not local.is_dir():
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(model_path, allow_patterns=["*.json"]))
        pattern = "*.safetensors" if list(local.glob("*.safetensors.index.json")) else "*.bin"
        local = Path(snapshot_download(model_path, allow_patterns=["*.json", pattern]))
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (local / index).is_file():
            shards = sorted(set(json.loads((local / index).read_text())["weight_map"].values()))
            return [local / s for s in shards]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (local / single).is_file():
            return [local / single]
    raise HarnessError(f"no weight files (model.safetensors, pytorch_model.bin or their index) in {local}")


def read_tensors(files: list[Path]) -> Iterator[tuple[str, Tensor]]:
    from safetensors import safe_open

    for f in files:
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as shard:
                for name in shard.keys():
                    yield name, shard.get_tensor(name)
        else:
            yield from torch.load(f, map_location="cpu", weights_only=True, mmap=True).items()


def load(model_path: str, cfg: dict[str, Any], dtype: torch.dtype):
    """The DeepSeekMoE checkpoint at `model_path` (config `cfg`) as the host class, weights in
    `dtype` (the router stays in float32, as the host keeps it)."""
    from transformers import Ernie4_5_MoeForCausalLM

    where = f"DeepSeekMoE checkpoint {model_path}"
    config = host_config(cfg, where)
    with torch.device("meta"):
        model = Ernie4_5_MoeForCausalLM(config)
    expected = model.state_dict()
    try:
        state = to_host(read_tensors(weight_files(model_path)), config, where)
    except HarnessError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated shard, a missing file
        raise HarnessError(f"{where}: cannot read its weights ({type(e).__name__}: {first_line(e)})") from None
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise HarnessError(f"{where}: weights do not match its config (missing: {', '.join(missing[:3]) or '-'}; "
                           f"unexpected: {', '.join(unexpected[:3]) or '-'})")
    for name, t in state.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise HarnessError(f"{where}: {name} has shape {tuple(t.shape)}, its config says "
                               f"{tuple(expected[name].shape)}")
        state[name] = t.to(torch.float32 if ".mlp.gate." in name else dtype)
    model.load_state_dict(state, strict=True, assign=True)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)  # a buffer, not in the checkpoint
    return model
