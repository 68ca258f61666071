"""Data efficiency (`efficiency:`), a table and a figure: the held-out loss curves of the
pre-trainings of the chosen rows and shapes, paired by seed with the reference row."""

from harness.grid import Grid, as_json, curve_dirs
from reports.plugin import Report


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
    renderer="reports.efficiency:table", enabled=enabled, inputs=inputs, cfg=cfg)
FIG_EFFICIENCY = Report(
    name="fig_efficiency", output="reports/fig_efficiency.png", category="Figures", kind="log-figure",
    renderer="reports.efficiency:figure", enabled=enabled, inputs=inputs, cfg=cfg)
