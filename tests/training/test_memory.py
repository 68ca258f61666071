"""The planner's memory model against measurement: the bytes autograd saves for a student's
backward, estimated from coefficients fitted on other shapes (harness/workflow/plan.py), within
15 % of a fresh measurement; its parameter count against the model's own."""

import pytest

from harness.training.memory import FIT_SHAPES, saved_bytes
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
