"""Student shapes and the three source architectures."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from harness.workflow.config import load_profile
from harness.models.build import build_model, param_count, source_config, student_config

PAPER_PARAMS = {"12L-267M": 267e6, "16L-321M": 321e6, "12L-709M": 709e6, "16L-877M": 877e6}


@pytest.mark.parametrize("name", list(PAPER_PARAMS))
def test_paper_students_have_the_papers_parameter_counts(name):
    spec = load_profile("paper")["shapes"][name]
    n = param_count(student_config(name, spec, vocab_size=50280, max_positions=2048))
    assert abs(n - PAPER_PARAMS[name]) / PAPER_PARAMS[name] < 0.01, n


def test_student_is_llama_with_untied_embeddings():
    config = student_config("s", {"layers": 2, "hidden": 32, "ffn": 48, "heads": 2}, 100, 64)
    model = build_model(config, seed=0)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert model.model.layers[0].mlp.gate_proj.weight.shape == (48, 32)  # (out, in)
    assert model.config._attn_implementation == "sdpa"  # fused attention kernels on GPUs


def test_same_seed_same_student():
    config = student_config("s", {"layers": 1, "hidden": 16, "ffn": 24, "heads": 2}, 50, 32)
    a, b = build_model(config, 3), build_model(config, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


SOURCES = {
    "olmo": {"arch": "olmo", "layers": 2, "hidden": 32, "ffn": 64, "heads": 2},
    "olmoe": {"arch": "olmoe", "layers": 2, "hidden": 32, "ffn": 16, "heads": 2, "experts": 4, "top_k": 2},
    "deepseek": {"arch": "deepseek", "layers": 2, "hidden": 32, "ffn": 16, "heads": 2, "experts": 4, "top_k": 2,
                 "shared_experts": 1},
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_sources_round_trip_through_save_pretrained(name, tmp_path):
    model = build_model(source_config(name, SOURCES[name], 100, 64), seed=0).eval()
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 100, (2, 10))
    torch.testing.assert_close(model(x).logits, again(x).logits)


def test_moe_sources_expose_fused_experts_and_shared_experts():
    olmoe = build_model(source_config("olmoe", SOURCES["olmoe"], 100, 64), 0)
    experts = olmoe.model.layers[0].mlp.experts
    assert experts.gate_up_proj.shape == (4, 2 * 16, 32)  # (E, 2*I, H)
    assert experts.down_proj.shape == (4, 32, 16)  # (E, H, I)
    ds = build_model(source_config("deepseek", SOURCES["deepseek"], 100, 64), 0)
    assert ds.model.layers[0].mlp.shared_experts.gate_proj.weight.shape == (16, 32)


def test_micro_shapes_keep_the_papers_ratios():
    shapes = load_profile("micro")["shapes"]
    small, small_deep, large, large_deep = shapes.values()
    assert small["layers"] * 4 == small_deep["layers"] * 3 == large["layers"] * 4
    assert large["hidden"] == 2 * small["hidden"]
    assert small["ffn"] == 3 * small["hidden"] and large["ffn"] == 2 * large["hidden"]
