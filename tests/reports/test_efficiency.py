"""The data-efficiency report: tokens to the reference's final held-out loss, paired by seed."""

import json
import math

import pytest

from harness.errors import HarnessError
from reports.tables.efficiency import table
from reports.loss_view import read_curve, tokens_to_reach


def test_tokens_to_reach_interpolates_linearly():
    curve = [(0, 10.0), (100, 6.0), (200, 4.0), (300, 3.0)]
    assert tokens_to_reach(curve, 5.0) == pytest.approx(150.0)
    assert tokens_to_reach(curve, 6.0) == pytest.approx(100.0)
    assert tokens_to_reach(curve, 10.5) == 0.0
    assert tokens_to_reach(curve, 2.0) is None
    # the first crossing counts, not a later one
    assert tokens_to_reach([(0, 5.0), (10, 3.0), (20, 4.0), (30, 2.0)], 3.5) == pytest.approx(7.5)


def write_log(path, curve):
    lines = [json.dumps({"step": i, "loss": 9.0, "tokens": t}) for i, (t, _) in enumerate(curve)]
    lines += [json.dumps({"step": i, "tokens": t, "eval": {"heldout_loss": l}}) for i, (t, l) in enumerate(curve)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_read_curve_and_its_errors(tmp_path):
    write_log(tmp_path / "a.jsonl", [(200, 4.0), (0, 10.0)])
    assert read_curve(tmp_path / "a.jsonl") == [(0, 10.0), (200, 4.0)]
    (tmp_path / "b.jsonl").write_text(json.dumps({"step": 1, "loss": 3.0, "tokens": 5}) + "\n")
    with pytest.raises(HarnessError, match="logs no held-out loss"):
        read_curve(tmp_path / "b.jsonl")
    (tmp_path / "c.jsonl").write_text("{not json\n")
    with pytest.raises(HarnessError, match="c.jsonl line 1 is not JSON"):
        read_curve(tmp_path / "c.jsonl")


def test_a_row_that_learns_twice_as_fast_shows_a_factor_of_two(tmp_path):
    """Reference loss 10·exp(-t/1000); the fast row is the same curve at twice the tokens."""
    budget, points = 4000, range(0, 4001, 250)
    curves = []
    for seed in range(3):
        for method, speed in (("scratch", 1.0), ("fast", 2.0)):
            path = tmp_path / method / f"{seed}.jsonl"
            write_log(path, [(t, 10 * math.exp(-speed * t / 1000) + 0.01 * seed) for t in points])
            curves.append([method, "none", "S", seed, str(path)])
    cfg = {"profile": "p", "seeds": [0, 1, 2], "budget": "b", "budget_tokens": budget, "shapes": ["S"],
           "rows": [["scratch", "none", "Scratch"], ["fast", "none", "Fast"]],
           "reference": ["scratch", "none", "Scratch"], "curves": curves,
           "heldout": {"sequences": 4, "seq_len": 8, "every_steps": 1}}
    rows = {c[1]: c for c in ([x.strip() for x in line.strip("|").split("|")]
                              for line in table(cfg).splitlines() if line.startswith("| "))}
    assert rows["Fast"][5].startswith("2.0 ± 0.0k")  # reaches the reference's final loss at half the budget
    assert rows["Fast"][6].startswith("2.00 ± 0.00×") and rows["Fast"][7] == "3 of 3"
    assert rows["Scratch"][6].startswith("1.00") and rows["Scratch"][3] == "0"
    assert rows["Fast"][4] == "▼ yes" and rows["Scratch"][4] == "–"
    gap = 10 * math.exp(-8) - 10 * math.exp(-4)
    assert float(rows["Fast"][3].split()[0]) == pytest.approx(gap, abs=1e-3)
