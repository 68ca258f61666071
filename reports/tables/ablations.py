"""Tables 4 and 5 and Figure 4 (`ablation:`): MASA's variants on one student shape. The tables
put the reference row (Scratch) first, the base of their paired differences."""

from harness.grid import Grid
from reports.plugin import Report


def _rows(grid: Grid, report: str, paired: bool):
    variants = grid.ablations.get(report, [])
    return [grid.reference, *variants] if paired else variants


def _ablation(name: str, output: str, kind: str, paired: bool = True) -> Report:
    shapes = lambda grid: [grid.C["ablation"]["shape"]]  # noqa: E731
    return Report(
        name=name, output=output, category="Figures" if kind == "figure" else "Tables", kind=kind,
        renderer=f"reports.render:{name}", enabled=lambda grid: bool(grid.ablations),
        inputs=lambda grid: grid.eval_files(_rows(grid, name, paired), shapes(grid), grid.budget, grid.mc_tasks),
        cfg=lambda grid: grid.report_cfg(_rows(grid, name, paired), shapes(grid), grid.budget))


TABLE4 = _ablation("table4", "reports/table4.md", "table")
TABLE5 = _ablation("table5", "reports/table5.md", "table")
FIG4 = _ablation("fig4", "reports/fig4.png", "figure", paired=False)
