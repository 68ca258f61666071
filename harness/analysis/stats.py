"""Paired statistics of the tables: what a difference between two rows is worth.

Rows with the same seed share their pre-training and SFT data order (and MASA shares
every non-FFN initial weight with Scratch), and every row answers the same test items,
so a row's difference to the reference row is measured per seed and per item, never
between two independent means. Two intervals are reported for a difference:

- seed-paired t: the per-seed difference of the two rows' scores (a task's accuracy, or
  the task average), Student's t over seeds. It sees the seed-to-seed variation of
  training but needs several seeds (none with one).
- item x seed bootstrap: the per-item, per-seed differences resampled as a crossed
  design (seeds with replacement, the same draw for every task; items with replacement
  within each task), percentile interval of the mean. It also sees which test items
  happened to be drawn, and works with one seed. Resampling both ways counts the item x seed
  residual twice (once in each direction), so where that residual dominates the interval is
  conservative, up to sqrt(2) wider than the sampling error (tests/analysis/test_stats.py shows it).

A difference is *resolved* when every interval available excludes 0 on the same side.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError


def t_interval(values: list[float], level: float = 0.95) -> tuple[float, float | None]:
    """Mean and half-width of its Student-t interval (None for fewer than two values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    from scipy.stats import t

    return mean, t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def crossed_bootstrap(diffs: list[np.ndarray], level: float = 0.95, resamples: int = 10_000,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean over tasks of each task's mean difference, under an
    item x seed bootstrap.

    `diffs[k]` is task k's (S, N_k) array of per-seed, per-item differences (row − reference),
    seeds in the same order for every task. Each resample draws S seeds with replacement, once
    for all tasks (a seed is one trained model that answers every task), and N_k items with
    replacement within each task; its statistic is the task mean of the mean of d[seeds][:, items].
    Drawing with replacement is a multinomial count per index, so the statistic of a resample is
    w_seedsᵀ · d · w_items with the counts as weights: no (S, N) copy per resample.
    """
    if not diffs:
        raise HarnessError("bootstrap: no differences")
    n_seeds = diffs[0].shape[0]
    if any(d.ndim != 2 or d.shape[0] != n_seeds or d.shape[1] == 0 for d in diffs):
        raise HarnessError(f"bootstrap: every task needs an (S={n_seeds}, N>0) array of differences")
    rng = np.random.default_rng(seed)
    seed_w = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=resamples) / n_seeds  # (B, S)
    stat = np.zeros(resamples)
    for d in diffs:
        n = d.shape[1]
        item_w = rng.multinomial(n, np.full(n, 1 / n), size=resamples) / n  # (B, N)
        stat += ((seed_w @ d) * item_w).sum(axis=1)  # (B,)
    stat /= len(diffs)
    lo, hi = np.quantile(stat, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def direction(intervals: list[tuple[float, float]]) -> int:
    """+1 / -1 when every interval excludes 0 above / below it, 0 when not (resolved or not)."""
    if all(lo > 0 for lo, _ in intervals):
        return 1
    if all(hi < 0 for _, hi in intervals):
        return -1
    return 0


@dataclass(frozen=True)
class Difference:
    """A row's difference to the reference row: the mean, both intervals, seeds used."""

    mean: float
    t_half: float | None  # seed-paired t half-width (None with one seed)
    boot: tuple[float, float]  # item x seed bootstrap percentile interval
    seeds: int

    @property
    def t_interval(self) -> tuple[float, float] | None:
        return None if self.t_half is None else (self.mean - self.t_half, self.mean + self.t_half)

    @property
    def direction(self) -> int:
        """+1 / -1 when every interval excludes 0 above / below it, 0 when not resolved."""
        return direction([self.boot] + ([self.t_interval] if self.t_interval else []))


def paired_difference(diffs: list[np.ndarray], level: float = 0.95, resamples: int = 10_000,
                      seed: int = 0) -> Difference:
    """The mean over tasks of the per-task mean difference, with its seed-paired t interval
    (over the per-seed task means) and its item x seed bootstrap interval (`crossed_bootstrap`)."""
    per_seed = np.mean([d.mean(axis=1) for d in diffs], axis=0)  # (S,): each seed's task-mean difference
    mean, half = t_interval(per_seed.tolist(), level)
    return Difference(mean, half, crossed_bootstrap(diffs, level, resamples, seed), len(per_seed))


def item_matrix(rows: dict[int, dict], reference: dict[int, dict], where: str) -> tuple[list[int], np.ndarray]:
    """(seeds, (S, N) per-item differences) of one task: `rows[seed]` and `reference[seed]` are
    evaluation records with `items` (key, score); only seeds both have are paired, and the two
    records of a seed must hold the same items in the same order."""
    seeds = sorted(set(rows) & set(reference))
    if not seeds:
        return [], np.zeros((0, 0))
    out = []
    for s in seeds:
        a, b = rows[s], reference[s]
        for r in (a, b):
            if "items" not in r:
                raise HarnessError(f"{where}: {r.get('_path', 'an evaluation')} has no per-item results; "
                                   f"re-run its evaluation")
        keys_a, keys_b = [i["key"] for i in a["items"]], [i["key"] for i in b["items"]]
        if keys_a != keys_b:
            raise HarnessError(f"{where}: cannot pair {a.get('_path', '?')} with {b.get('_path', '?')}: their test "
                               f"items differ ({len(keys_a)} vs {len(keys_b)} items, "
                               f"{len(set(keys_a) ^ set(keys_b))} keys in only one)")
        out.append([x["score"] - y["score"] for x, y in zip(a["items"], b["items"])])
    return seeds, np.array(out, dtype=float).reshape(len(seeds), -1)
