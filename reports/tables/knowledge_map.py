"""reports/knowledge_map.md (`signal.map`): where the twin's transferable knowledge lives. Each
part of the twin on Scratch's init (baselines/oracle.py), beside the signal report's controls,
on the signal shape at the report budget, in both views. The accuracy view says which parts
carry the world's facts far enough to answer its questions; the loss view
(reports/loss_view.py) sees the smaller effects, such as the FFNs' alone, and says whether they
last. `ffn-spectrum` keeps only the FFN weights' singular values: a head start it shares with
Oracle-FFN is scale and spectrum, not content."""

from __future__ import annotations

import datetime as _dt

from harness.workflow.grid import Grid, curve_dirs
from harness.workflow.report import Report
from reports import loss_view as lv
from reports.paired import SFT, differences
from reports.tables.signal import knowledge_map_rows, signal_controls


def _rows(grid: Grid):
    return [grid.reference, *signal_controls(grid.C).values(), *knowledge_map_rows(grid.C)]


def _curves(grid: Grid) -> list[list]:
    return grid.curves(_rows(grid), [grid.C["signal"]["shape"]], grid.budget)


def inputs(grid: Grid) -> list[str]:
    return grid.eval_files(_rows(grid), [grid.C["signal"]["shape"]], grid.budget, grid.mc_tasks)


def cfg(grid: Grid) -> str:
    shape = grid.C["signal"]["shape"]
    return grid.report_cfg(_rows(grid), [shape], grid.budget, heldout=grid.heldout_cfg(),
                           curves=_curves(grid))


KNOWLEDGE_MAP = Report(
    name="knowledge_map", output="reports/knowledge_map.md", category="Benchmark signal", kind="table",
    renderer="reports.tables.knowledge_map:render",
    enabled=lambda grid: bool(knowledge_map_rows(grid.C)) and "heldout" in grid.C,
    inputs=inputs, cfg=cfg, needs=lambda grid: curve_dirs(_curves(grid)))


def _accuracy(d) -> str:
    if d is None:
        return "–"
    t = f"±{d.t_half:.2f}" if d.t_half is not None else "t –"
    return f"{d.mean:+.2f} ({t}; bootstrap [{d.boot[0]:+.2f}, {d.boot[1]:+.2f}])" + (f" {lv.MARKS[d.direction]}"
                                                                                     if d.direction else "")


def render(cfg: dict, results: list[dict]) -> str:
    ref_method, ref_source, ref_label = cfg["reference"]
    shape = cfg["shapes"][0][0]
    curves = lv.load_curves(cfg)
    reference = curves[(ref_method, ref_source, shape)]
    accuracy = {label: avg for (_, label), (_, avg) in differences(cfg, results, SFT).items()}
    rows = [(m, s, label) for m, s, label in cfg["rows"] if (m, s) != (ref_method, ref_source)]
    views = {label: lv.row_view(curves[(m, s, shape)], reference) for m, s, label in rows}
    gaps = {label: v.gap for label, v in views.items()}
    lines = ["| Row | Δ accuracy, average (t; bootstrap) | Δ held-out loss at budget | data factor | head start |",
             "|---|---|---|---|---|"]
    for label, view in views.items():
        lines.append(f"| {label} | {_accuracy(accuracy.get(label))} | " + " | ".join(view.cells()) + " |")
    points = len(next(iter(gaps.values())).tokens) if gaps else 0
    return "\n".join([
        "# Where the transferable knowledge lives", "",
        f"Profile `{cfg['profile']}` · student `{shape}` · budget `{cfg['budget']}` = {cfg['budget_tokens']:,} tokens "
        f"· seeds {', '.join(map(str, cfg['seeds']))} · rendered {_dt.date.today().isoformat()}.", "",
        f"Each row copies one part of the knowing twin into the student and keeps {ref_label}'s initial weights "
        f"for the rest; every row is then pre-trained, fine-tuned and evaluated like {ref_label}. Differences to "
        f"{ref_label}, paired by seed (and by test item for accuracy): accuracy in points after SFT, averaged over "
        f"the tasks (▲ / ▼ resolved); held-out LM loss in nats at the budget (95% t interval, ▼ lower); the data "
        f"factor (budget / tokens to reach {ref_label}'s final loss); the head start (docs/signal.md, \"The loss "
        f"view\").", "", *lines, "",
        f"The loss gap along pre-training: mean [simultaneous 95% band over {points} token counts, Bonferroni].", "",
        *lv.gap_table(gaps), ""])
