"""Data efficiency (`efficiency:`), a table and a figure: the held-out LM loss during
pre-training, paired by seed with the reference row.

The paper claims MASA needs 2-5x less pre-training data than Scratch. Every pre-training logs
its LM loss on the same held-out windows (never trained on) from step 0, every
`heldout.every_steps` steps (`harness.training.runs.pretrain_run`). Per row and seed this reports:

- the loss gap to the reference row's same seed at the full budget (equal tokens);
- the tokens the row needs to reach the reference's final held-out loss, linearly
  interpolated between logged points, and the data factor budget / tokens (how many
  times less data than the reference used); a row that never reaches it says so.

Caveat: a point before the end of a run is a mid-schedule model (cosine decay not finished),
so "tokens to reach" compares a partly decayed row with a fully decayed reference: it
understates a row's real saving, never overstates it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from harness.workflow.config import must_be_row_label, must_name
from harness.errors import HarnessError
from harness.workflow.grid import Grid, as_json, curve_dirs
from harness.workflow.report import Report, Section
from harness.analysis.stats import direction, t_interval
from reports.loss_view import (fmt_closing, gap_table, head_start_closes, load_curves, paired_gap, saved_table,
                               tokens_saved, tokens_to_reach)
from reports.paired import MARK
from reports.render import pyplot, save_figure


def _runs(grid: Grid):
    eff = {"shapes": grid.shapes, **grid.C["efficiency"]}
    wanted = eff.get("rows")  # labels; all rows when absent
    rows = [grid.reference, *(r for r in grid.rows if r != grid.reference and (wanted is None or r.label in wanted))]
    return eff, rows, grid.curves(rows, eff["shapes"], eff["budget"])


def cfg(grid: Grid) -> str:
    eff, rows, curves = _runs(grid)
    return as_json(profile=grid.profile, seeds=grid.C["seeds"], budget=eff["budget"],
                   budget_tokens=grid.C["budgets"][eff["budget"]]["tokens"], rows=[list(r) for r in rows],
                   shapes=eff["shapes"], reference=list(grid.reference), heldout=grid.heldout_cfg(), curves=curves)


def inputs(grid: Grid) -> list[str]:
    return curve_dirs(_runs(grid)[2])


def enabled(grid: Grid) -> bool:
    return "efficiency" in grid.C


TABLE_EFFICIENCY = Report(
    name="table_efficiency", output="reports/table_efficiency.md", category="Tables", kind="log-table",
    renderer="reports.tables.efficiency:table", enabled=enabled, inputs=inputs, cfg=cfg)
FIG_EFFICIENCY = Report(
    name="fig_efficiency", output="reports/fig_efficiency.png", category="Figures", kind="log-figure",
    renderer="reports.tables.efficiency:figure", enabled=enabled, inputs=inputs, cfg=cfg)


def _check(config: dict) -> None:
    eff = config["efficiency"]
    for shape in eff.get("shapes", []):
        must_name(config, "efficiency.shapes", "shape", shape, "shapes")
    must_name(config, "efficiency.budget", "budget", eff["budget"], "budgets")
    for label in eff.get("rows", []):
        must_be_row_label(config, "efficiency.rows", label)
    if "heldout" not in config:
        raise HarnessError("config error: efficiency: the data-efficiency report needs a `heldout` section")


EFFICIENCY = Section("efficiency", """
type: object
description: the data-efficiency table and figure, rows (by label) on shapes at one budget
additionalProperties: false
required: [budget]
properties:
  shapes: {type: array, minItems: 1, items: {type: string}, description: "the student shapes (default: every shape)"}
  budget: {type: string, description: the pre-training budget whose curves are read}
  rows: {type: array, minItems: 1, items: {type: string}, description: "labels of `methods` rows (default: every row)"}
""", check=_check)


def _fmt(values: list[float], digits: int = 3, sign: bool = False) -> str:
    if not values:
        return "–"
    mean, half = t_interval(values)
    spec = f"{'+' if sign else ''}.{digits}f"
    return f"{mean:{spec}}" if half is None else f"{mean:{spec}} ± {half:.{digits}f}"


def _resolved(gaps: list[float]) -> str:
    """Whether the seed-paired t interval of the loss gap excludes 0 (▼: lower loss than the reference)."""
    if len(gaps) < 2:
        return "–"
    mean, half = t_interval(gaps)
    return MARK[direction([(mean - half, mean + half)])]


def table(cfg: dict) -> str:
    curves = load_curves(cfg)
    ref_method, ref_source, ref_label = cfg["reference"]
    head = ["Shape", "Method", "held-out loss at budget", f"Δ loss vs {ref_label} (paired)", "resolved",
            f"tokens to {ref_label}'s final loss", "data factor (budget / tokens)", "seeds reaching it"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shape in cfg["shapes"]:
        ref = curves.get((ref_method, ref_source, shape), {})
        for i, (method, source, label) in enumerate(cfg["rows"]):
            row = curves.get((method, source, shape), {})
            seeds = sorted(set(row) & set(ref))
            finals = [row[s][-1][1] for s in row]
            gaps = [row[s][-1][1] - ref[s][-1][1] for s in seeds]
            reached = {s: tokens_to_reach(row[s], ref[s][-1][1]) for s in seeds}
            tokens = [t for t in reached.values() if t is not None]
            factors = [row[s][-1][0] / t for s, t in reached.items() if t]
            is_ref = (method, source) == (ref_method, ref_source)
            lines.append("| " + " | ".join([
                shape if i == 0 else "", label, _fmt(finals), "0" if is_ref else _fmt(gaps, sign=True),
                "–" if is_ref else _resolved(gaps),
                _fmt([t / 1000 for t in tokens], digits=1) + ("k" if tokens else ""),
                _fmt(factors, digits=2) + ("×" if factors else ""), f"{len(tokens)} of {len(seeds)}"]) + " |")
    return ("# Data efficiency: held-out LM loss during pre-training\n\n"
            f"Profile `{cfg['profile']}` · seeds {', '.join(map(str, cfg['seeds']))} · pre-training budget "
            f"`{cfg['budget']}` = {cfg['budget_tokens']:,} tokens · held-out set: the token stream's last "
            f"{cfg['heldout']['sequences']} windows of {cfg['heldout']['seq_len']} tokens, never trained on, "
            f"scored every {cfg['heldout']['every_steps']} steps from step 0.\n\n"
            f"Per row and seed, paired with {ref_label}'s same seed (same data order): the loss gap at the full "
            f"budget (resolved: its seed-paired t interval excludes 0; ▼ a lower loss than {ref_label}'s), and the "
            f"tokens the row needs to reach {ref_label}'s final held-out loss (linear between "
            f"logged points; a mid-run point is a model whose learning-rate decay has not finished, so this "
            f"understates a saving). Cells: mean ± 95% CI over seeds (Student's t); the data factor averages "
            f"the seeds that reach the loss. The paper claims MASA needs 2–5× less pre-training data.\n\n"
            + "\n".join(lines) + "\n" + _curve_sections(cfg, curves))


def _curve_sections(cfg: dict, curves) -> str:
    """Per shape: each row's gap to the reference at every logged token count (simultaneous band)
    and the data factor at each of the reference's loss levels (the horizontal distance)."""
    ref_method, ref_source, ref_label = cfg["reference"]
    out = []
    for shape in cfg["shapes"]:
        reference = curves.get((ref_method, ref_source, shape), {})
        rows = [(label, curves.get((m, s, shape), {})) for m, s, label in cfg["rows"]
                if (m, s) != (ref_method, ref_source)]
        rows = [(label, row) for label, row in rows if row and set(row) & set(reference)]
        if not rows:
            continue
        gaps = {label: paired_gap(row, reference) for label, row in rows}
        saved = {label: tokens_saved(row, reference) for label, row in rows}
        points = len(next(iter(gaps.values())).tokens)
        out += [f"\n## {shape}: the gap along pre-training\n",
                f"Held-out loss − {ref_label}'s, paired by seed, at every logged token count: mean [simultaneous "
                f"95% band over the {points} points, Bonferroni], ▼ / ▲ where the band excludes 0. Head start of "
                "each row: " + "; ".join(f"{label} {fmt_closing(head_start_closes(g))}" for label, g in gaps.items())
                + ".\n", *gap_table(gaps), "",
                f"Tokens saved: to reach the loss {ref_label} has at each token count, how many times fewer tokens "
                f"the row needed (per seed, mean ± 95% t; `–` when a seed never reached it in the budget):\n",
                *saved_table(saved, ref_label)]
    return "\n".join(out) + ("\n" if out else "")


def _band(ax, xs, stats, label: str, colour: str) -> None:
    means = [m for m, _ in stats]
    halves = [h or 0.0 for _, h in stats]
    ax.plot(xs, means, marker="o", markersize=2.5, label=label, color=colour)
    ax.fill_between(xs, [m - h for m, h in zip(means, halves)], [m + h for m, h in zip(means, halves)],
                    alpha=0.15, color=colour)


def figure(cfg: dict, out: Path) -> None:
    """Held-out loss vs tokens (top) and its paired gap to the reference row (bottom), per shape."""
    plt = pyplot()
    curves = load_curves(cfg)
    ref_method, ref_source, ref_label = cfg["reference"]
    fig, axes = plt.subplots(2, len(cfg["shapes"]), figsize=(3.6 * len(cfg["shapes"]) + 1, 6.4), squeeze=False,
                             sharex="col")
    for col, shape in enumerate(cfg["shapes"]):
        ref = curves.get((ref_method, ref_source, shape), {})
        for i, (method, source, label) in enumerate(cfg["rows"]):
            row = curves.get((method, source, shape), {})
            colour = f"C{i}"  # one colour per row in both panels (the reference has no gap curve)
            points = defaultdict(list)
            for curve in row.values():
                for tokens, loss in curve:
                    points[tokens].append(loss)
            if points:
                xs = sorted(points)
                _band(axes[0][col], xs, [t_interval(points[x]) for x in xs], label, colour)
            if (method, source) != (ref_method, ref_source) and set(row) & set(ref):
                gap = paired_gap(row, ref)  # the band the table reports: simultaneous over the curve
                _band(axes[1][col], gap.tokens, list(zip(gap.mean, gap.band)), label, colour)
        axes[0][col].set_title(shape, fontsize=9)
        axes[1][col].axhline(0.0, color="grey", linewidth=0.8)
        axes[1][col].set_xlabel("pre-training tokens")
    axes[0][0].set_ylabel("held-out LM loss (mean ± 95% CI)")
    axes[1][0].set_ylabel(f"Δ loss vs {ref_label}, paired by seed\n(simultaneous 95% band)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Data efficiency · profile {cfg['profile']} · budget {cfg['budget']} · seeds "
                 f"{', '.join(map(str, cfg['seeds']))}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)

