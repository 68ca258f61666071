"""The planner's memory model against measurement: the bytes autograd saves for a student's
backward, estimated from coefficients fitted on other shapes (harness/workflow/plan.py), within
15 % of a fresh measurement; its parameter count against the model's own."""

import pytest

from harness.training.memory import FIT_SHAPES, saved_by, saved_bytes
from harness.workflow.plan import activation_bytes, llama_params

# (layers, hidden, ffn, heads, vocab, batch, seq_len): none of them a fitting shape, one deeper and wider
HELD_OUT = [(4, 96, 288, 3, 640, 2, 80), (3, 160, 320, 4, 1536, 1, 128), (6, 64, 192, 2, 384, 3, 48)]


@pytest.mark.parametrize("L, h, f, heads, vocab, batch, seq_len", HELD_OUT)
def test_the_activation_estimate_is_within_15_percent_of_a_measurement(L, h, f, heads, vocab, batch, seq_len):
    assert (L, h, f, heads, vocab, batch, seq_len) not in FIT_SHAPES
    shape = {"layers": L, "hidden": h, "ffn": f, "heads": heads}
    measured, params = saved_bytes(shape, vocab, batch, seq_len, seed=1)
    assert llama_params(shape, vocab) == params
    estimate = activation_bytes(shape, vocab, batch * seq_len)
    assert estimate == pytest.approx(measured, rel=0.15), f"{estimate / measured - 1:+.1%}"


@pytest.mark.parametrize("d_in, d_out, tokens", [(40, 120, 900), (160, 480, 333), (1000, 60, 100)])
def test_masas_saved_bytes_per_weight_are_what_autograd_saves(d_in, d_out, tokens):
    """The planner's MASA graph (harness/workflow/plan.py masa_saved_bytes) against the bytes autograd
    saves for one weight's L_out + L_spec, measured, at odd shapes (r does not divide d_in)."""
    import torch

    from harness.workflow.plan import masa_saved_bytes
    from methods.masa import alignment_step, gene_rank, init_gene, log_spectrum

    g = torch.Generator().manual_seed(0)
    W, x = torch.randn(d_out, d_in, generator=g), torch.randn(tokens, d_in, generator=g)
    r = gene_rank(d_in, d_out, 0.23)
    M = torch.nn.Parameter(init_gene(W, r, g))
    saved = saved_by(lambda: alignment_step({"w": M}, {"w": W}, {"w": log_spectrum(W, r)}, {"w": x}, 1.0), [M])
    assert masa_saved_bytes(d_in, d_out, tokens, r) == pytest.approx(saved, rel=0.15)


def test_the_planners_gene_ranks_are_masas():
    """plan.gene_ranks mirrors methods/masa.py sized_ranks (planning imports no torch): every `size`
    reading gives the same r per weight."""
    import torch

    from harness.workflow.plan import aligned_weights, gene_ranks
    from methods.masa import AlignedWeight, sized_ranks

    shape = {"layers": 2, "hidden": 48, "ffn": 136}
    dims = aligned_weights(shape, {})
    weights = [AlignedWeight(f"w{i}", 0, "up", torch.zeros(d_out, d_in)) for i, (d_in, d_out) in enumerate(dims)]
    for size in ("ratio", "rank:7", "total:5000", "fraction:0.01"):
        for ratio in (0.03, 0.23):
            options = {"size": size, "ratio": ratio}
            assert gene_ranks(dims, options, 1_000_000) == list(sized_ranks(weights, size, ratio, 1_000_000).values())


@pytest.mark.parametrize("batch, seq_len, vocab, chunk", [(2, 64, 500, 4096), (4, 33, 1000, 4096), (1, 200, 300, 64)])
def test_distillations_kl_saves_what_the_planner_counts(batch, seq_len, vocab, chunk):
    """KD_SAVED_BYTES per (token, vocabulary entry): measured on baselines/distill.py's kd_loss, the
    student's logits in bf16 as under autocast, chunked or not."""
    import torch

    from baselines.distill import kd_loss
    from harness.workflow.plan import KD_SAVED_BYTES

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, seq_len, vocab, generator=g).bfloat16().requires_grad_(True)
    labels = torch.randint(0, vocab, (batch, seq_len), generator=g)
    hidden, head = torch.randn(batch, seq_len, 16, generator=g), torch.nn.Linear(16, vocab, bias=False)
    saved = saved_by(lambda: kd_loss(logits, labels, hidden, head, 1.0, chunk), [logits])
    assert KD_SAVED_BYTES * batch * (seq_len - 1) * vocab == pytest.approx(saved, rel=0.15)
