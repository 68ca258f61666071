"""The loss view: a row's held-out LM loss along pre-training, paired by seed with a reference row.

Every pre-training scores the same held-out windows (never trained on) every
`heldout.every_steps` steps from step 0, so two rows' curves with the same seed are measured
on the same text at the same token counts, after the same data order. Their per-seed
difference is a low-variance, paired measure of transfer that accuracy on a few hundred test
items cannot match at small scale (docs/signal.md, "The loss view").

What a curve says, here:

- `paired_gap`: the gap (row − reference) at every logged token count, with a *simultaneous*
  95% band: Student-t over seeds at level 1 − 0.05 / T for T token counts (Bonferroni), so
  the chance that the band misses the true gap anywhere on the curve is at most 5%. A point
  is resolved where the band excludes 0. A per-point 95% interval would, over ten points,
  call a null curve "resolved" somewhere about a third of the time.
- `head_start_closes`: the first logged token count from which the gap is never again
  resolved below 0 (the band), and per seed the first count from which that seed's own gap
  stays at or above 0 (linear between points), with a t interval over seeds.
- `tokens_saved`: the horizontal distance between the curves: for each reference point
  (t, loss), the tokens the row needed to first reach that seed's reference loss, and the
  ratio t / tokens (what "k× less data" literally means), paired by seed.
- `endpoint`: the gap at the last logged point (the budget) with a plain 95% t interval, and
  the data factor budget / tokens-to-reach-the-reference's-final-loss per seed.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.analysis.stats import t_interval

Curve = list[tuple[int, float]]  # (tokens seen, held-out loss), ascending in tokens
LEVEL = 0.95


def read_curve(path: Path) -> Curve:
    """The held-out loss points of a pre-training's `train_log.jsonl`."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise HarnessError(f"loss curves: cannot read pre-training log {path}: {e}") from None
    points = []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise HarnessError(f"loss curves: {path} line {n} is not JSON") from None
        if "heldout_loss" in record.get("eval", {}):
            points.append((record["tokens"], record["eval"]["heldout_loss"]))
    if not points:
        raise HarnessError(f"loss curves: {path} logs no held-out loss (pre-trained without a `heldout` section?)")
    return sorted(points)


def load_curves(cfg: dict) -> dict[tuple[str, str, str], dict[int, Curve]]:
    """(method, source, shape) -> seed -> curve, for every pre-training a report's config names
    (`curves`: [method, source, shape, seed, log path], `harness.workflow.grid.Grid.curves`)."""
    out: dict[tuple[str, str, str], dict[int, Curve]] = {}
    for method, source, shape, seed, path in cfg.get("curves", []):
        out.setdefault((method, source, shape), {})[seed] = read_curve(Path(path))
    return out


def tokens_to_reach(curve: Curve, target: float) -> float | None:
    """The first token count at which the curve, linear between its points, is at or below
    `target`; None if it never is."""
    prev = None
    for tokens, loss in curve:
        if loss <= target:
            if prev is None or prev[1] == loss:
                return float(tokens)
            t0, l0 = prev
            return t0 + (l0 - target) / (l0 - loss) * (tokens - t0)
        prev = (tokens, loss)
    return None


def _direction(mean: float, half: float | None) -> int:
    """-1: resolved below 0 (the row's loss is lower), +1: above, 0: not resolved."""
    if half is None or not math.isfinite(half):
        return 0
    return -1 if mean + half < 0 else (1 if mean - half > 0 else 0)


@dataclass(frozen=True)
class Gap:
    """A row's paired loss gap to the reference along the curve."""

    seeds: list[int]
    tokens: list[int]  # the token counts every seed of both rows logged
    per_seed: list[list[float]]  # [seed][point]: row − reference
    mean: list[float]
    band: list[float | None]  # simultaneous half-widths (None with fewer than two seeds)

    def direction(self, i: int) -> int:
        return _direction(self.mean[i], self.band[i])


def paired_gap(row: dict[int, Curve], ref: dict[int, Curve], level: float = LEVEL) -> Gap:
    """The gap at every token count both rows logged for every seed they share."""
    seeds = sorted(set(row) & set(ref))
    if not seeds:
        raise HarnessError("loss curves: the row and its reference share no seed")
    tokens = sorted(set.intersection(*(set(dict(c)) for s in seeds for c in (row[s], ref[s]))))
    if not tokens:
        raise HarnessError("loss curves: the row and its reference logged no common token count")
    per_seed = [[dict(row[s])[t] - dict(ref[s])[t] for t in tokens] for s in seeds]
    point_level = 1 - (1 - level) / len(tokens)  # Bonferroni over the curve's points
    stats = [t_interval([d[i] for d in per_seed], point_level) for i in range(len(tokens))]
    return Gap(seeds, tokens, per_seed, [m for m, _ in stats], [h for _, h in stats])


def _zero_crossing(tokens: list[int], gaps: list[float]) -> float | None:
    """The first token count from which `gaps` stays at or above 0, linear between points; None
    if the last point is still below 0. A curve that never dips below 0 closes at its start."""
    last_below = max((i for i, g in enumerate(gaps) if g < 0), default=None)
    if last_below is None:
        return float(tokens[0])
    if last_below == len(gaps) - 1:
        return None
    t0, g0, t1, g1 = tokens[last_below], gaps[last_below], tokens[last_below + 1], gaps[last_below + 1]
    return t0 + (0 - g0) / (g1 - g0) * (t1 - t0)


@dataclass(frozen=True)
class Closing:
    resolved_until: int | None  # the last token count whose band lies below 0 (None: never resolved below)
    closes_at: int | None  # the first token count from which the band is never again below 0 (None: not closed)
    per_seed: list[float | None]  # each seed's own zero crossing (None: still below 0 at the end)


def head_start_closes(gap: Gap) -> Closing:
    below = [i for i in range(len(gap.tokens)) if gap.direction(i) == -1]
    if not below:
        return Closing(None, gap.tokens[0], [_zero_crossing(gap.tokens, d) for d in gap.per_seed])
    last = below[-1]
    closes = gap.tokens[last + 1] if last + 1 < len(gap.tokens) else None
    return Closing(gap.tokens[last], closes, [_zero_crossing(gap.tokens, d) for d in gap.per_seed])


def tokens_saved(row: dict[int, Curve], ref: dict[int, Curve]) -> list[tuple[int, list[float | None]]]:
    """[(reference token count t, [per seed: t / tokens the row needed to reach the reference's
    loss at t, or None if it never did])], over the reference's logged points after step 0."""
    seeds = sorted(set(row) & set(ref))
    points = sorted(set.intersection(*(set(dict(ref[s])) for s in seeds)) - {0})
    out = []
    for t in points:
        ratios = []
        for s in seeds:
            reached = tokens_to_reach(row[s], dict(ref[s])[t])
            ratios.append(None if reached is None else (t / reached if reached > 0 else math.inf))
        out.append((t, ratios))
    return out


@dataclass(frozen=True)
class Endpoint:
    """The gap at the budget (the last logged point) and the data factor, paired by seed."""

    gaps: list[float]
    mean: float
    half: float | None  # plain 95% t half-width (one test: no correction)
    factors: list[float | None]  # budget / tokens to reach the reference's final loss (None: never)

    @property
    def direction(self) -> int:
        return _direction(self.mean, self.half)

    def factor_interval(self) -> tuple[float, float | None] | None:
        """Mean and t half-width of the data factor, None unless every seed reached the loss."""
        if not self.factors or any(f is None or not math.isfinite(f) for f in self.factors):
            return None
        return t_interval(self.factors)


def endpoint(row: dict[int, Curve], ref: dict[int, Curve]) -> Endpoint:
    seeds = sorted(set(row) & set(ref))
    if not seeds:
        raise HarnessError("loss curves: the row and its reference share no seed")
    gaps = [row[s][-1][1] - ref[s][-1][1] for s in seeds]
    factors = []
    for s in seeds:
        reached = tokens_to_reach(row[s], ref[s][-1][1])
        factors.append(None if reached is None else (row[s][-1][0] / reached if reached > 0 else math.inf))
    mean, half = t_interval(gaps)
    return Endpoint(gaps, mean, half, factors)


@dataclass(frozen=True)
class RowView:
    """A row's loss view against its reference: the gap along the curve and at the budget."""

    gap: Gap
    end: Endpoint

    def cells(self) -> tuple[str, str, str]:
        """(gap at the budget, data factor, head start), as the tables print them."""
        gap, factor = fmt_endpoint(self.end)
        return gap, factor, fmt_closing(head_start_closes(self.gap))


def row_view(row: dict[int, Curve], ref: dict[int, Curve]) -> RowView:
    return RowView(paired_gap(row, ref), endpoint(row, ref))


def seeds_needed(sd: float, target_half: float, level: float = LEVEL, most: int = 10_000) -> int | None:
    """The fewest seeds n whose t half-width t(n−1) · sd / √n is at most `target_half` (None if
    more than `most`): how many seeds a criterion on a half-width needs at the measured spread."""
    if target_half <= 0 or not math.isfinite(sd):
        return None
    from scipy.stats import t

    for n in range(2, most + 1):
        if t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n) <= target_half:
            return n
    return None


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


# ---------------------------------------------------------------- rendering

MARKS = {-1: "▼", 0: "", 1: "▲"}  # resolved below / above the reference


def kilo(tokens: float) -> str:
    return f"{tokens / 1000:.1f}k" if tokens >= 1000 else f"{tokens:.0f}"


def fmt_interval(mean: float, half: float | None, digits: int = 3) -> str:
    if half is None:
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{mean - half:+.{digits}f}, {mean + half:+.{digits}f}]"


def fmt_endpoint(e: Endpoint) -> tuple[str, str]:
    """(gap at the budget with its interval and mark, data factor with its interval or why not)."""
    gap = fmt_interval(e.mean, e.half) + (f" {MARKS[e.direction]}" if e.direction else "")
    factor = e.factor_interval()
    if factor is None:
        never = sum(f is None for f in e.factors)
        at_start = sum(f is not None and math.isinf(f) for f in e.factors)
        why = [f"{never} of {len(e.factors)} seeds never reach the reference's final loss"] if never else []
        why += [f"{at_start} of {len(e.factors)} start at or below it"] if at_start else []
        return gap, f"– ({'; '.join(why)})"
    mean, half = factor
    return gap, f"{mean:.2f}×" + (f" [{mean - half:.2f}, {mean + half:.2f}]" if half is not None else "")


def fmt_closing(c: Closing) -> str:
    """When the head start closes: the band's last resolved point and each seed's zero crossing."""
    if c.resolved_until is None:
        return "never resolved below"
    band = f"resolved below until {kilo(c.resolved_until)}" + (
        f", closed from {kilo(c.closes_at)}" if c.closes_at is not None else ", still open at the budget")
    crossings = [x for x in c.per_seed if x is not None]
    if len(crossings) == len(c.per_seed) and len(crossings) > 1:
        mean, half = t_interval(crossings)
        band += f"; per-seed zero crossing {kilo(mean)} ± {kilo(half)}"
    else:
        band += f"; {len(c.per_seed) - len(crossings)} of {len(c.per_seed)} seeds still below 0 at the budget"
    return band


def gap_table(gaps: dict[str, Gap]) -> list[str]:
    """One line per row: its gap at every token count, mean [simultaneous band], ▼/▲ where resolved."""
    if not gaps:
        return []
    tokens = sorted(set.union(*(set(g.tokens) for g in gaps.values())))
    lines = ["| Row | " + " | ".join(kilo(t) for t in tokens) + " |", "|---|" + "---|" * len(tokens)]
    for label, g in gaps.items():
        cells = {t: fmt_interval(g.mean[i], g.band[i]) + (f" {MARKS[g.direction(i)]}" if g.direction(i) else "")
                 for i, t in enumerate(g.tokens)}
        lines.append(f"| {label} | " + " | ".join(cells.get(t, "–") for t in tokens) + " |")
    return lines


def saved_table(saved: dict[str, list[tuple[int, list[float | None]]]], ref_label: str) -> list[str]:
    """Per row, the data factor t / tokens-to-reach at each of the reference's logged points."""
    tokens = sorted({t for rows in saved.values() for t, _ in rows})
    lines = [f"| Row (× less data than {ref_label} to reach its loss at) | " + " | ".join(kilo(t) for t in tokens)
             + " |", "|---|" + "---|" * len(tokens)]
    for label, rows in saved.items():
        cells = {}
        for t, ratios in rows:
            got = [r for r in ratios if r is not None and math.isfinite(r)]
            if len(got) < len(ratios):
                cells[t] = f"– ({len(got)}/{len(ratios)})"
            else:
                mean, half = t_interval(got)
                cells[t] = f"{mean:.2f}" + (f" ± {half:.2f}" if half is not None else "")
        lines.append(f"| {label} | " + " | ".join(cells.get(t, "–") for t in tokens) + " |")
    return lines


def rows_section(cfg: dict, what: str, curves_too: bool = False) -> str:
    """The loss view of a grid table's rows (`cfg`: rows, shapes, reference, curves at the
    table's budget), one line per (shape, row): the gap at the budget, the data factor and the
    head start, and with `curves_too` each shape's gap at every logged token count; "" when the
    config names no curves (a profile without `heldout`)."""
    curves = load_curves(cfg)
    if not curves:
        return ""
    ref_method, ref_source, ref_label = cfg["reference"]
    lines = [f"| Shape | Row | Δ held-out loss at budget vs {ref_label} | data factor | head start |",
             "|---|---|---|---|---|"]
    along = []
    for shape, _ in cfg["shapes"]:
        reference = curves.get((ref_method, ref_source, shape), {})
        gaps = {}
        for method, source, label in cfg["rows"]:
            row = curves.get((method, source, shape), {})
            if (method, source) == (ref_method, ref_source) or not row or not reference:
                continue
            view = row_view(row, reference)
            gaps[label] = view.gap
            lines.append(f"| {'' if len(gaps) > 1 else shape} | {label} | " + " | ".join(view.cells()) + " |")
        if curves_too and gaps:
            along += ["", f"{shape}, the gap at every logged token count: mean [simultaneous 95% band, "
                          "Bonferroni over the points]:", "", *gap_table(gaps)]
    return (f"\n## The loss view: held-out LM loss of {what}\n\n"
            f"The same students' held-out LM loss during pre-training, paired by seed with {ref_label}'s (same data "
            "order, same held-out windows): the gap at the budget in nats (95% t interval over seeds; ▼ lower, ▲ "
            f"higher, resolved), the data factor (budget / tokens to reach {ref_label}'s final loss), and where a "
            "head start closes (a simultaneous band over the logged token counts). The loss sees smaller "
            "effects than accuracy on a few hundred test items; docs/signal.md, \"The loss view\", says what "
            "each view can see.\n\n" + "\n".join(lines + along) + "\n")
