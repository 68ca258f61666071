"""Neuron pools and logit-lens attribution against direct computations, on every architecture."""

import pytest
import torch

from harness.models.build import build_model, source_config, student_config
from harness.models.archs import ffn_views
from harness.models.neurons import LogitLens, attribute, component_scores

VOCAB = 60


def grab_input(module, into):
    """Keep the last position of `module`'s first input in `into["x"]` (the hook returns None,
    so the input is not replaced)."""
    return module.register_forward_pre_hook(lambda m, a: into.update(x=a[0][0, -1]) and None)
SPEC = {"layers": 2, "hidden": 32, "ffn": 40, "heads": 4, "experts": 4, "top_k": 2, "shared_experts": 1}


def model_of(arch, seed=0):
    if arch == "llama":
        config = student_config("t", SPEC, VOCAB, 32)
    else:
        config = source_config("s", {**SPEC, "arch": arch}, VOCAB, 32)
    model = build_model(config, seed).eval()
    with torch.no_grad():  # non-trivial norms, so the lens's scale and weights matter
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


ARCHS = ["llama", "olmo", "olmoe", "deepseek"]


@pytest.mark.parametrize("arch", ARCHS)
def test_pool_neurons_sum_to_the_ffn_output(arch):
    """Every expert's neurons side by side, weighted by routing: the pool reproduces the FFN."""
    model = model_of(arch)
    x = torch.randn(7, SPEC["hidden"])
    for layer, view in zip(model.model.layers, ffn_views(model)):
        with torch.no_grad():
            acts = view.activations(x)
            pool = view.pool()
            ref = layer.mlp(x[None])[0]
        assert pool["up"].shape == pool["gate"].shape == (acts.shape[1], SPEC["hidden"])
        torch.testing.assert_close(acts @ pool["down"].T, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_lens_is_exact_at_the_final_residual(arch):
    """The frozen-scale lens of the last layer's output is the model's own logits (OLMo's
    parameter-free LayerNorm centres; RMSNorms scale by their weights)."""
    model = model_of(arch)
    ids = torch.randint(0, VOCAB, (1, 9))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    grabbed = {}
    handle = grab_input(model.model.norm, grabbed)
    with torch.no_grad():
        model(input_ids=ids)
    handle.remove()
    lens = LogitLens(model, grabbed["x"])
    torch.testing.assert_close(lens(grabbed["x"]), out.logits[0, -1], atol=1e-4, rtol=1e-4)


def test_component_scores_match_a_float64_reference():
    model = model_of("olmo")
    lens = LogitLens(model, torch.randn(SPEC["hidden"]))
    h, vectors, target = torch.randn(SPEC["hidden"]), torch.randn(5, SPEC["hidden"]), 3
    ours = component_scores(lens, h, vectors, target, chunk=2)

    def logp(x):  # the lens written out: centre, divide by the fixed scale, unembed
        x = x.double()
        x = (x - x.mean()) * lens.scale.double()
        return torch.log_softmax(model.lm_head.weight.double() @ x, -1)[target]

    ref = torch.stack([logp(h + v) - logp(h) for v in vectors])
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "olmo", "olmoe"])
def test_a_neuron_writing_the_targets_unembedding_ranks_first(arch):
    """Plant one FFN neuron of the last layer whose output is the target token's unembedding
    direction (scaled against the norm's weights): its attribution must rank first."""
    torch.manual_seed(0)
    model = model_of(arch)
    ids, target = torch.randint(0, VOCAB, (6,)).tolist(), 11
    layer = model.model.layers[-1]
    grabbed = {}
    handle = grab_input(layer.mlp, grabbed)
    with torch.no_grad():
        model(input_ids=torch.tensor([ids]))
    handle.remove()
    acts = ffn_views(model)[-1].activations(grabbed["x"][None])[0]
    planted = int(acts.abs().argmax())  # a neuron that fires (routed to, for the MoE)
    norm_w = getattr(model.model.norm, "weight", None)
    direction = model.lm_head.weight[target] / (norm_w if norm_w is not None else 1)

    def plant(sign):
        column = sign * 5 * torch.sign(acts[planted]) * direction / direction.norm()
        with torch.no_grad():
            if hasattr(layer.mlp, "down_proj"):
                layer.mlp.down_proj.weight[:, planted] = column
            else:
                e, i = divmod(planted, SPEC["ffn"])
                layer.mlp.experts.down_proj[e][:, i] = column
        return attribute(model, ids, target)

    scores = plant(+1)
    assert int(scores.ffn[-1].argmax()) == planted
    assert scores.ffn[-1][planted] > 0 and len(scores.attn[-1]) == SPEC["hidden"]
    assert int(plant(-1).ffn[-1].argmin()) == planted  # writing against the target ranks last
