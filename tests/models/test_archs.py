"""Architecture adapters: each FFN view rebuilds its module's output exactly, and a layout no
adapter knows is a one-line error, never a silently smaller FFN."""

import subprocess
import sys

import pytest
import torch

from harness.models.archs import adapter, adapter_for, attention_weights, ffn_views
from harness.errors import HarnessError
from harness.models.build import build_model, source_config

VOCAB = 61
SPEC = {"layers": 2, "hidden": 24, "ffn": 20, "heads": 2, "experts": 5, "top_k": 2, "shared_experts": 2}


def model_of(arch, **overrides):
    config = source_config("s", {**SPEC, "arch": arch}, VOCAB, 16)
    for k, v in overrides.items():
        setattr(config, k, v)
    model = build_model(config, 0).eval()
    with torch.no_grad():  # init puts routers at zero; random routers send tokens to different experts
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("arch,parts", [("llama", {"dense"}), ("olmo", {"dense"}), ("olmoe", {"routed"}),
                                        ("deepseek", {"shared", "routed"})])
def test_the_view_rebuilds_each_layers_ffn_output(arch, parts):
    model = model_of(arch)
    x = torch.randn(11, SPEC["hidden"])
    for layer, view in zip(model.model.layers, ffn_views(model)):
        assert {p for p in ("dense", "shared", "routed") if getattr(view, p) is not None} == parts
        with torch.no_grad():
            ref = layer.mlp(x[None])[0]
            torch.testing.assert_close(view(x), ref, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(view.activations(x) @ view.pool()["down"].T, ref, atol=1e-5, rtol=1e-4)


def test_deepseeks_dense_first_layers_are_read_as_dense():
    model = model_of("deepseek", moe_layer_start_index=1)
    views = ffn_views(model)
    assert views[0].dense is not None and views[1].routed is not None
    x = torch.randn(5, SPEC["hidden"])
    with torch.no_grad():
        torch.testing.assert_close(views[0](x), model.model.layers[0].mlp(x[None])[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ["olmoe", "deepseek"])
def test_one_routed_expert_is_its_slice_of_the_fused_tensors(arch):
    """Expert e alone, fed every token with weight 1, equals the fused module's own forward
    with every token routed to e alone (the module's code is the reference)."""
    model = model_of(arch)
    mlp = model.model.layers[1].mlp
    routed = ffn_views(model)[1].routed
    assert routed.n == SPEC["experts"]
    x = torch.randn(9, SPEC["hidden"])
    for e in range(routed.n):
        index = torch.full((9, 1), e)
        with torch.no_grad():
            ref = mlp.experts(x, index, torch.ones(9, 1))
            torch.testing.assert_close(routed.expert(e)(x), ref, atol=1e-5, rtol=1e-4)
        inter = mlp.experts.gate_up_proj.shape[1] // 2
        assert routed.expert(e).gate.data_ptr() == mlp.experts.gate_up_proj[e, :inter].data_ptr()  # a view, no copy


def test_a_view_map_reaches_every_parameter():
    """`view` maps each parameter before slicing (Seeking reads sensitivities this way)."""
    model = model_of("deepseek")
    doubled = ffn_views(model, lambda p: 2 * p)[0].pool()
    plain = ffn_views(model)[0].pool()
    for k in ("gate", "up", "down"):
        torch.testing.assert_close(doubled[k], 2 * plain[k])


def test_attention_weights_name_what_a_llama_shares():
    for arch in ("olmo", "olmoe", "deepseek"):
        assert set(attention_weights(model_of(arch), 0)) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_deepseeks_attention_is_a_llamas_with_the_weights_it_hands_out():
    """The DeepSeekMoE host rotates interleaved pairs; the q/k rows `attention_weights` returns are
    in a Llama's order: a Llama attention holding them computes the host's attention output."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding

    model = model_of("deepseek")
    host = model.model.layers[0].self_attn
    cfg = LlamaConfig(hidden_size=SPEC["hidden"], num_attention_heads=SPEC["heads"], num_key_value_heads=SPEC["heads"],
                      intermediate_size=8, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    llama = LlamaAttention(cfg, 0)
    with torch.no_grad():
        for name, w in attention_weights(model, 0).items():
            getattr(llama, name).weight.copy_(w)
        x = torch.randn(1, 7, SPEC["hidden"])
        ids = torch.arange(7)[None]
        mask = torch.full((7, 7), float("-inf")).triu(1)[None, None]
        ref = llama(x, LlamaRotaryEmbedding(cfg)(x, ids), mask)[0]
        got = host(x, model.model.rotary_emb(x, ids), mask)[0]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)
    assert not torch.equal(attention_weights(model, 0)["q_proj"], host.q_proj.weight)  # the rows do move


def test_a_model_type_without_an_adapter_is_one_line():
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    config = Qwen2MoeConfig(vocab_size=VOCAB, hidden_size=24, intermediate_size=20, moe_intermediate_size=8,
                            shared_expert_intermediate_size=8, num_experts=4, num_experts_per_tok=2,
                            num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    model = Qwen2MoeForCausalLM(config)
    with pytest.raises(HarnessError, match="no architecture adapter reads model type 'qwen2_moe'") as e:
        ffn_views(model)
    assert "\n" not in str(e.value)
    # and an adapter handed a layout it does not know names the module and what it would drop
    with pytest.raises(HarnessError, match=r"unknown FFN layout at model.layers.0.mlp \(Qwen2MoeSparseMoeBlock\)"
                                           r".*shared_expert.down_proj.weight") as e:
        adapter("olmoe").ffn(model.model.layers[0].mlp, "model.layers.0.mlp")
    assert "\n" not in str(e.value)


def test_an_unknown_arch_is_refused_in_one_line_with_a_suggestion():
    with pytest.raises(HarnessError, match="unknown architecture 'olmoee'; did you mean 'olmoe'"):
        source_config("x", {**SPEC, "arch": "olmoee"}, VOCAB, 16)


def test_the_model_types_map_back_to_their_adapters():
    for arch in ("llama", "olmo", "olmoe", "deepseek"):
        assert adapter_for(model_of(arch)) is adapter(arch)


def test_adapters_are_read_without_torch():
    """Config validation reads each adapter's REQUIRED keys; it must not pay torch's import."""
    code = ("import sys; from harness.models.archs import adapter, arch_names; "
            "[adapter(a).REQUIRED for a in arch_names()]; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("arch", ["olmoe", "deepseek"])
def test_every_experts_implementation_computes_the_same_logits_and_gradients(arch):
    """`experts_implementation` is a speed choice (harness bench-moe), never a numbers choice: one
    MoE source's loss, logits and gradients agree under grouped_mm, eager and batched_mm."""
    import torch

    from harness.models.archs import EXPERTS_IMPLEMENTATION, EXPERTS_IMPLEMENTATIONS
    from harness.models.build import build_model, source_config

    spec = {"arch": arch, "layers": 2, "hidden": 32, "ffn": 24, "heads": 2, "experts": 4, "top_k": 2,
            **({"shared_experts": 1} if arch == "deepseek" else {})}
    ids = torch.randint(0, 200, (3, 17), generator=torch.Generator().manual_seed(0))
    outs = {}
    for impl in EXPERTS_IMPLEMENTATIONS:
        model = build_model(source_config(arch, {**spec, "experts_implementation": impl}, 200, 32), seed=0)
        assert model.config._experts_implementation == impl
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        outs[impl] = (out.logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert build_model(source_config(arch, spec, 200, 32), seed=0).config._experts_implementation == EXPERTS_IMPLEMENTATION
    logits, grads = outs[EXPERTS_IMPLEMENTATION]
    for impl, (other_logits, other_grads) in outs.items():
        torch.testing.assert_close(other_logits, logits, rtol=1e-5, atol=1e-5, msg=impl)
        assert other_grads.keys() == grads.keys()
        for name in grads:
            torch.testing.assert_close(other_grads[name], grads[name], rtol=1e-4, atol=1e-6, msg=f"{impl} {name}")
