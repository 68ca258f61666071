"""Paired statistics against independent references, and the renderer on planted effects."""

import json
import re

import numpy as np
import pytest
from scipy import stats as sp

from harness.errors import HarnessError
from harness.analysis.stats import Difference, crossed_bootstrap, item_matrix, paired_difference, t_interval


def test_t_interval_is_scipys_paired_t_interval():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 11):
        a, b = rng.normal(50, 3, n), rng.normal(49, 3, n)
        mean, half = t_interval((a - b).tolist())
        ci = sp.ttest_rel(a, b).confidence_interval(0.95)
        assert mean - half == pytest.approx(ci.low) and mean + half == pytest.approx(ci.high)
    assert t_interval([1.5]) == (1.5, None)
    _, half90 = t_interval([1.0, 2.0, 4.0], level=0.9)
    assert half90 == pytest.approx(sp.t.ppf(0.95, 2) * np.std([1.0, 2.0, 4.0], ddof=1) / np.sqrt(3))


@pytest.mark.parametrize("n", [7, 37, 250])
def test_one_seed_bootstrap_is_scipys_percentile_bootstrap(n):
    """With one seed the crossed bootstrap is the plain paired bootstrap of the item differences."""
    rng = np.random.default_rng(n)
    d = rng.choice([-100.0, 0.0, 0.0, 0.0, 100.0], size=n) + rng.normal(0, 5, n)
    lo, hi = crossed_bootstrap([d[None, :]], resamples=40_000, seed=1)
    ref = sp.bootstrap((d,), np.mean, n_resamples=40_000, method="percentile", random_state=2).confidence_interval
    width = ref.high - ref.low
    assert lo == pytest.approx(ref.low, abs=0.03 * width) and hi == pytest.approx(ref.high, abs=0.03 * width)


def naive_crossed_bootstrap(diffs, resamples, rng, level=0.95):
    """Resample by explicit indexing: S seeds once for all tasks, N_k items per task."""
    s = diffs[0].shape[0]
    stats = []
    for _ in range(resamples):
        seeds = rng.integers(s, size=s)
        stats.append(np.mean([d[np.ix_(seeds, rng.integers(d.shape[1], size=d.shape[1]))].mean() for d in diffs]))
    return np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])


def test_crossed_bootstrap_matches_explicit_resampling_on_odd_shapes():
    rng = np.random.default_rng(3)
    # three seeds, tasks of 13, 50 and 29 items; a seed effect shared by the tasks, item noise
    seed_effect = rng.normal(0, 2, (3, 1))
    diffs = [rng.normal(1.0, 8, (3, n)) + seed_effect for n in (13, 50, 29)]
    lo, hi = crossed_bootstrap(diffs, resamples=20_000, seed=4)
    ref_lo, ref_hi = naive_crossed_bootstrap(diffs, 20_000, np.random.default_rng(5))
    width = ref_hi - ref_lo
    assert lo == pytest.approx(ref_lo, abs=0.04 * width) and hi == pytest.approx(ref_hi, abs=0.04 * width)
    # the seed draw is shared by the tasks: with a large seed effect the interval is wider than
    # resampling each task's seeds on its own would make it
    big = [d + np.array([[-15.0], [0.0], [15.0]]) for d in diffs]
    assert np.subtract(*crossed_bootstrap(big, seed=0)[::-1]) > np.subtract(*crossed_bootstrap(diffs, seed=0)[::-1])


def test_bootstrap_refuses_ragged_seeds():
    with pytest.raises(HarnessError, match="every task needs"):
        crossed_bootstrap([np.zeros((3, 4)), np.zeros((2, 4))])


def test_paired_difference_and_resolution():
    rng = np.random.default_rng(6)
    plus = [rng.normal(3.0, 1.0, (5, 100)) for _ in range(2)]
    d = paired_difference(plus, resamples=2000)
    assert d.mean == pytest.approx(np.mean([x.mean() for x in plus]))
    assert d.seeds == 5 and d.direction == 1
    assert paired_difference([-x for x in plus], resamples=2000).direction == -1
    null = [rng.normal(0.0, 1.0, (5, 100))]
    assert Difference(0.1, 0.5, (-0.2, 0.4), 5).direction == 0
    assert Difference(1.0, 1.5, (0.2, 1.8), 5).direction == 0  # the bootstrap alone is not enough
    assert Difference(1.0, None, (0.2, 1.8), 1).direction == 1  # one seed: the bootstrap decides
    assert paired_difference(null, resamples=2000).t_half > 0


def _record(keys, scores, path="x.json"):
    return {"items": [{"key": k, "score": s} for k, s in zip(keys, scores)], "_path": path}


def test_pairing_refuses_files_whose_items_differ():
    a = {0: _record(["a", "b", "c"], [100, 0, 100], "row.json")}
    same = {0: _record(["a", "b", "c"], [0, 0, 100], "ref.json")}
    seeds, d = item_matrix(a, same, "t")
    assert seeds == [0] and d.tolist() == [[100, 0, 0]]
    other = {0: _record(["a", "b", "d"], [0, 0, 100], "ref.json")}
    with pytest.raises(HarnessError, match="cannot pair row.json with ref.json: their test items differ"):
        item_matrix(a, other, "t")
    reordered = {0: _record(["b", "a", "c"], [0, 0, 100], "ref.json")}
    with pytest.raises(HarnessError, match="cannot pair"):
        item_matrix(a, reordered, "t")
    with pytest.raises(HarnessError, match="has no per-item results"):
        item_matrix(a, {0: {"_path": "old.json", "value": 50.0}}, "t")
    assert item_matrix(a, {1: same[0]}, "t")[0] == []  # no common seed: nothing paired


# ---------------------------------------------------------------- the renderer on planted effects

TASKS = ["boolq", "piqa", "hellaswag", "winogrande", "casehold", "medmcqa"]


def plant(tmp_path, n_items=250, seeds=5):
    """Per-item evaluation files of three rows on one shape: a reference, a row that answers 2 %
    of the items more correctly (+2 points on average), and a null row that differs only by noise.
    Both other rows turn about 5 % of the items from right to wrong and as many from wrong to
    right (the accuracy stays on average, the items move), each seed anew."""
    rng = np.random.default_rng(7)
    paths = []
    for task in TASKS:
        keys = [f"{task}-{i}" for i in range(n_items)]
        skill = rng.uniform(0.2, 0.6, n_items)
        for seed in range(seeds):
            ref = rng.random(n_items) < skill
            rows = {"scratch": ref}
            for name, gain in (("effect", 0.02), ("null", 0.0)):
                row = ref.copy()
                lost, won = rng.binomial(n_items, 0.05, size=2)
                right, wrong = rng.permutation(np.flatnonzero(ref)), rng.permutation(np.flatnonzero(~ref))
                row[right[:lost]], row[wrong[:won]] = False, True
                row[wrong[won:won + rng.binomial(n_items, gain)]] = True
                rows[name] = row
            for method, correct in rows.items():
                path = tmp_path / f"{method}-{seed}-{task}.json"
                path.write_text(json.dumps({
                    "method": method, "source": "none", "shape_name": "S", "seed": seed, "task": task,
                    "budget_name": "b", "value": 100.0 * correct.mean(),
                    "items": [{"key": k, "score": 100.0 * c} for k, c in zip(keys, correct)]}))
                paths.append(path)
    return paths


def test_renderer_resolves_a_planted_two_point_effect_and_not_a_null(tmp_path):
    from harness.workflow.report import load_report

    cfg = {"profile": "planted", "seeds": list(range(5)), "budget": "b", "budget_paper": None, "budget_tokens": 1,
           "rows": [["scratch", "none", "Scratch"], ["effect", "none", "Effect"], ["null", "none", "Null"]],
           "shapes": [["S", {"label": "toy"}]], "tasks": [[t, t.upper()] for t in TASKS],
           "reference": ["scratch", "none", "Scratch"], "statistics": {"resamples": 4000}}
    out = tmp_path / "table1.md"
    load_report("table1").render(cfg, plant(tmp_path), out)
    text = out.read_text()
    paired = {}
    for line in text.split("### Paired differences to Scratch")[1].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 + len(TASKS) + 4 and cells[1] in ("Effect", "Null"):
            paired[cells[1]] = cells
    effect, null = paired["Effect"], paired["Null"]
    assert float(effect[-4]) == pytest.approx(2.0, abs=0.6)
    assert effect[-1] == "▲ yes" and null[-1] == "no"
    for cells in (effect, null):
        lo, hi = map(float, re.findall(r"[+-]\d+\.\d+", cells[-2]))
        t_lo, t_hi = map(float, re.findall(r"[+-]\d+\.\d+", cells[-3]))
        assert lo < float(cells[-4]) < hi and t_lo < float(cells[-4]) < t_hi
    assert float(re.findall(r"[+-]\d+\.\d+", null[-2])[0]) < 0 < float(re.findall(r"[+-]\d+\.\d+", null[-2])[1])
    # the plain cells stay: the reference's mean ± CI per task
    assert re.search(r"\| Scratch \| \d+\.\d\d ± \d+\.\d\d", text)
