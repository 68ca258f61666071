"""reports/knowledge_map.md (`signal.map`): where the twin's transferable knowledge lives. Each
part of the twin on Scratch's init (baselines/oracle.py), beside the signal report's controls,
on the signal shape at the report budget, in the accuracy view and the loss view."""

from harness.grid import Grid, curve_dirs
from reports.plugin import Report


def _rows(grid: Grid):
    return [grid.reference, *grid.signal_controls.values(), *grid.knowledge_map]


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
    renderer="reports.knowledge_map:render", enabled=lambda grid: bool(grid.knowledge_map) and "heldout" in grid.C,
    inputs=inputs, cfg=cfg, needs=lambda grid: curve_dirs(_curves(grid)))
