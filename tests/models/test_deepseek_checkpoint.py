"""DeepSeekMoE checkpoints in their own layout load into the in-library host exactly: the host's
logits equal a reference forward written here from DeepSeekMoE's model code (plain attention with
Llama's rotary halves, a dense first layer, softmax top-k routing without renormalisation, shared
experts added), on a tiny checkpoint written in DeepSeekMoE's layout by the test itself."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from harness.models.archs import attention_weights, ffn_views
from harness.models.archs.deepseek_checkpoint import save
from harness.errors import HarnessError
from harness.models.sources import Source

CONFIG = {"model_type": "deepseek", "architectures": ["DeepseekForCausalLM"], "vocab_size": 97, "hidden_size": 24,
          "intermediate_size": 40, "moe_intermediate_size": 8, "num_hidden_layers": 3, "num_attention_heads": 4,
          "num_key_value_heads": 2, "n_shared_experts": 2, "n_routed_experts": 5, "num_experts_per_tok": 2,
          "moe_layer_freq": 1, "first_k_dense_replace": 1, "norm_topk_prob": False, "scoring_func": "softmax",
          "hidden_act": "silu", "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
          "rope_scaling": None, "attention_bias": False, "tie_word_embeddings": False}


def deepseek_weights(cfg, seed=0) -> dict[str, torch.Tensor]:
    """Random weights under DeepSeekMoE's own parameter names (one tensor per expert matrix)."""
    g = torch.Generator().manual_seed(seed)
    H, V, I, MI = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"], cfg["moe_intermediate_size"]
    hd = H // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd

    def rnd(*shape, scale=0.3):
        return torch.randn(*shape, generator=g) * scale

    w = {"model.embed_tokens.weight": rnd(V, H, scale=1.0), "model.norm.weight": 1 + rnd(H, scale=0.1),
         "lm_head.weight": rnd(V, H)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w.update({p + "self_attn.q_proj.weight": rnd(H, H), p + "self_attn.k_proj.weight": rnd(kv, H),
                  p + "self_attn.v_proj.weight": rnd(kv, H), p + "self_attn.o_proj.weight": rnd(H, H),
                  p + "input_layernorm.weight": 1 + rnd(H, scale=0.1),
                  p + "post_attention_layernorm.weight": 1 + rnd(H, scale=0.1)})
        mlps = {"mlp.": I} if l < cfg["first_k_dense_replace"] else {
            "mlp.shared_experts.": MI * cfg["n_shared_experts"],
            **{f"mlp.experts.{e}.": MI for e in range(cfg["n_routed_experts"])}}
        for prefix, width in mlps.items():
            w.update({p + prefix + "gate_proj.weight": rnd(width, H), p + prefix + "up_proj.weight": rnd(width, H),
                      p + prefix + "down_proj.weight": rnd(H, width)})
        if l >= cfg["first_k_dense_replace"]:
            w[p + "mlp.gate.weight"] = rnd(cfg["n_routed_experts"], H, scale=1.0)
    return w


def reference_logits(w, cfg, ids: torch.Tensor) -> torch.Tensor:
    """DeepSeekMoE's forward for one sequence, in float64, from its model code's definitions."""
    w = {k: v.double() for k, v in w.items()}
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, T, eps = H // nh, len(ids), cfg["rms_norm_eps"]
    inv_freq = 1.0 / cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()

    def rope(t):  # (heads, T, hd): Llama's rotate_half, pairs (i, i + hd/2)
        rotated = torch.cat([-t[..., hd // 2:], t[..., :hd // 2]], -1)
        return t * cos + rotated * sin

    def rms(x, weight):
        return weight * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)

    def mlp(x, p):
        return (F.silu(x @ w[p + "gate_proj.weight"].T) * (x @ w[p + "up_proj.weight"].T)) @ w[p + "down_proj.weight"].T

    x = w["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, nh, hd).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd).transpose(0, 1).repeat_interleave(nh // nkv, 0)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd).transpose(0, 1).repeat_interleave(nh // nkv, 0)
        scores = rope(q) @ rope(k).transpose(1, 2) / math.sqrt(hd) + mask
        x = x + (scores.softmax(-1) @ v).transpose(0, 1).reshape(T, H) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        if l < cfg["first_k_dense_replace"]:
            x = x + mlp(h, p + "mlp.")
            continue
        probs = (h @ w[p + "mlp.gate.weight"].T).softmax(-1)
        top_w, top_i = probs.topk(cfg["num_experts_per_tok"], dim=-1)
        if cfg["norm_topk_prob"]:
            top_w = top_w / (top_w.sum(-1, keepdim=True) + 1e-20)
        routed = torch.stack([sum(top_w[t, j] * mlp(h[t], f"{p}mlp.experts.{int(top_i[t, j])}.")
                                  for j in range(top_i.shape[1])) for t in range(T)])
        x = x + routed + mlp(h, p + "mlp.shared_experts.")
    return rms(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def write_checkpoint(path, cfg, weights):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path / "model.safetensors"))
    return path


@pytest.mark.parametrize("norm_topk_prob", [False, True])
def test_a_deepseekmoe_checkpoint_gives_its_own_logits(tmp_path, norm_topk_prob):
    cfg = {**CONFIG, "norm_topk_prob": norm_topk_prob}
    weights = deepseek_weights(cfg)
    model = Source("deepseek", "deepseek", str(write_checkpoint(tmp_path / "ckpt", cfg, weights))).load()
    assert type(model).__name__ == "Ernie4_5_MoeForCausalLM" and not any(p.requires_grad for p in model.parameters())
    ids = torch.randint(0, cfg["vocab_size"], (13,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model(input_ids=ids[None]).logits[0]
    expected = reference_logits(weights, cfg, ids)
    torch.testing.assert_close(got.double(), expected, atol=2e-4, rtol=1e-4)
    # routing matters here: several tokens go to different experts (not a test of the shared part alone)
    router = weights["model.layers.1.mlp.gate.weight"]
    assert len({tuple(r) for r in (torch.randn(13, 24) @ router.T).topk(2).indices.tolist()}) > 2


def test_the_views_read_deepseeks_weights_in_its_own_layout(tmp_path):
    """What methods read from the converted model is the checkpoint's own tensors: attention q/k
    in a Llama's row order, shared experts and expert e's matrices as DeepSeekMoE names them."""
    weights = deepseek_weights(CONFIG)
    model = Source("deepseek", "deepseek", str(write_checkpoint(tmp_path / "ckpt", CONFIG, weights))).load()
    for name, t in attention_weights(model, 2).items():
        assert torch.equal(t, weights[f"model.layers.2.self_attn.{name}.weight"])
    views = ffn_views(model)
    assert views[0].dense is not None and torch.equal(views[0].dense.up, weights["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(views[1].shared.down, weights["model.layers.1.mlp.shared_experts.down_proj.weight"])
    assert torch.equal(views[2].routed.expert(3).gate, weights["model.layers.2.mlp.experts.3.gate_proj.weight"])


def test_a_host_model_written_in_deepseeks_layout_reads_back_equal(tmp_path):
    """`save` (the paper-toy stand-in's writer) round-trips through the loader bit for bit."""
    weights = deepseek_weights(CONFIG)
    model = Source("deepseek", "deepseek", str(write_checkpoint(tmp_path / "ckpt", CONFIG, weights))).load()
    save(model, tmp_path / "again")
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert written["model_type"] == "deepseek" and "AutoModelForCausalLM" in written["auto_map"]
    again = Source("deepseek", "deepseek", str(tmp_path / "again")).load()
    for name, t in model.state_dict().items():
        assert torch.equal(t, again.state_dict()[name]), name


@pytest.mark.parametrize("change,match", [
    ({"scoring_func": "sigmoid"}, "scoring_func = 'sigmoid' is not supported"),
    ({"moe_layer_freq": 2}, "moe_layer_freq = 2 is not supported"),
    ({"n_routed_experts": 6}, r"layer 1 holds an incomplete set of expert weights"),
])
def test_a_checkpoint_the_host_cannot_express_is_one_line(tmp_path, change, match):
    cfg = {**CONFIG, **change}
    path = write_checkpoint(tmp_path / "ckpt", cfg, deepseek_weights(CONFIG))
    with pytest.raises(HarnessError, match=match) as e:
        Source("deepseek", "deepseek", str(path)).load()
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_a_truncated_shard_is_one_line(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt", CONFIG, deepseek_weights(CONFIG))
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(HarnessError, match="cannot read its weights") as e:
        Source("deepseek", "deepseek", str(path)).load()
    assert "\n" not in str(e.value)
