"""The loss view (reports/loss_view.py): paired gaps along a curve with a simultaneous band,
where a head start closes, the tokens saved, and the endpoint; on synthetic curves whose
effects are planted, and against an independent computation of the band."""

import math
import statistics

import numpy as np
import pytest
from scipy.stats import t as student_t

from reports import loss_view as lv

TOKENS = list(range(0, 100_001, 10_000))  # 11 logged points


def _reference(seed: int, rng) -> lv.Curve:
    offset = rng.normal(0, 0.05)  # a seed's own level: shared by every row of that seed (same data order)
    return [(t, 3.0 + 8.0 * math.exp(-t / 30_000) + offset) for t in TOKENS]


def _planted(ref: lv.Curve, gap, rng, noise: float = 0.01) -> lv.Curve:
    return [(t, loss + gap(t) + rng.normal(0, noise)) for t, loss in ref]


def transient(t):  # a head start of 0.5 nats that closes linearly between 20k and 40k tokens
    return -0.5 if t <= 20_000 else (-0.5 * (40_000 - t) / 20_000 if t < 40_000 else 0.0)


def persistent(t):
    return -0.1


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(0)
    ref = {s: _reference(s, rng) for s in range(5)}
    rows = {name: {s: _planted(ref[s], gap, rng) for s in ref}
            for name, gap in (("transient", transient), ("persistent", persistent), ("null", lambda t: 0.0))}
    return ref, rows


def test_each_planted_effect_is_resolved_where_it_is_and_nowhere_else(curves):
    ref, rows = curves
    gap = lv.paired_gap(rows["transient"], ref)
    assert gap.tokens == TOKENS and gap.seeds == list(range(5))
    resolved = [t for i, t in enumerate(gap.tokens) if gap.direction(i) == -1]
    assert resolved == [0, 10_000, 20_000, 30_000]  # the gap is -0.25 at 30k, 0 from 40k
    assert all(gap.direction(i) == 0 for i, t in enumerate(gap.tokens) if t >= 40_000)
    closing = lv.head_start_closes(gap)
    assert (closing.resolved_until, closing.closes_at) == (30_000, 40_000)
    assert all(x is None or 30_000 <= x <= 100_000 for x in closing.per_seed)

    gap = lv.paired_gap(rows["persistent"], ref)
    assert all(gap.direction(i) == -1 for i in range(len(gap.tokens)))
    closing = lv.head_start_closes(gap)
    assert (closing.resolved_until, closing.closes_at) == (100_000, None)
    assert closing.per_seed == [None] * 5  # every seed still below at the budget

    gap = lv.paired_gap(rows["null"], ref)
    assert all(gap.direction(i) == 0 for i in range(len(gap.tokens)))
    assert lv.head_start_closes(gap).resolved_until is None


def test_the_endpoint_and_data_factor(curves):
    ref, rows = curves
    e = lv.endpoint(rows["persistent"], ref)
    assert e.direction == -1 and e.mean == pytest.approx(-0.1, abs=0.02)
    mean, half = e.factor_interval()
    assert mean - half > 1  # it reaches Scratch's final loss before the budget, every seed
    e = lv.endpoint(rows["transient"], ref)
    assert e.direction == 0
    e = lv.endpoint(ref, rows["persistent"])  # the other way round: never reaches a lower final loss
    assert e.direction == 1 and e.factor_interval() is None and e.factors == [None] * 5


def test_tokens_saved_is_the_horizontal_distance():
    """Straight lines: the row is the reference shifted 20k tokens earlier, so it reaches the
    reference's loss at t after t - 20k tokens."""
    ref = {0: [(t, 10.0 - t / 10_000) for t in TOKENS]}
    row = {0: [(t, 10.0 - (t + 20_000) / 10_000) for t in TOKENS]}
    saved = dict(lv.tokens_saved(row, ref))
    assert saved[40_000] == [pytest.approx(40_000 / 20_000)]
    assert saved[100_000] == [pytest.approx(100_000 / 80_000)]
    assert saved[10_000] == [math.inf]  # the row starts below the reference's loss at 10k: from token 0
    assert dict(lv.tokens_saved(ref, row))[100_000] == [None]  # never reaches the shifted row's final loss


def test_the_band_is_bonferroni_over_the_points():
    """An independent computation of one point's half-width, and the band's family-wise error
    on null curves: at most about 5% of them are resolved anywhere, where per-point 95%
    intervals resolve a third of them somewhere."""
    rng = np.random.default_rng(1)
    ref = {s: [(t, 5.0) for t in TOKENS] for s in range(5)}
    row = {s: [(t, 5.0 + rng.normal(0, 0.1)) for t in TOKENS] for s in range(5)}
    gap = lv.paired_gap(row, ref)
    d = [row[s][3][1] - 5.0 for s in range(5)]
    expected = student_t.ppf(1 - 0.025 / len(TOKENS), 4) * statistics.stdev(d) / math.sqrt(5)
    assert gap.band[3] == pytest.approx(expected)
    assert gap.mean[3] == pytest.approx(statistics.fmean(d))

    anywhere = {"band": 0, "per point": 0}
    trials = 400
    for _ in range(trials):
        row = {s: [(t, 5.0 + rng.normal(0, 0.1)) for t in TOKENS] for s in range(5)}
        for name, level in (("band", 0.95), ("per point", 1 - 0.05 * len(TOKENS))):
            g = lv.paired_gap(row, ref, level=level)
            anywhere[name] += any(g.direction(i) for i in range(len(TOKENS)))
    assert anywhere["band"] / trials <= 0.07
    assert anywhere["per point"] / trials >= 0.25


def test_seeds_needed_matches_the_half_width_it_promises():
    n = lv.seeds_needed(sd=0.06, target_half=0.036)
    half = lambda k: student_t.ppf(0.975, k - 1) * 0.06 / math.sqrt(k)  # noqa: E731
    assert half(n) <= 0.036 < half(n - 1)
    assert lv.seeds_needed(sd=1.0, target_half=0.0) is None
