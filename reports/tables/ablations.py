"""Tables 4 and 5 and Figure 4 (`ablation:`): MASA's variants on one student shape. The tables
put the reference row (Scratch) first, the base of their paired differences."""

from harness.grid import Grid, curve_dirs
from reports.plugin import Report


def _rows(grid: Grid, report: str, paired: bool):
    variants = grid.ablations.get(report, [])
    return [grid.reference, *variants] if paired else variants


def _artifacts(grid: Grid, report: str) -> list[list[str]]:
    """[label, artifact directory] of each row that extracts (its genes' size goes under the table)."""
    rows = ((label, grid.init_inputs(m, s).get("artifact")) for m, s, label in _rows(grid, report, paired=False))
    return [[label, artifact] for label, artifact in rows if artifact]


def _enabled(grid: Grid, report: str) -> bool:
    """Figure 4 aligns on one corpus domain at a time: only a corpus with domains has it."""
    return bool(grid.ablations) and (report != "fig4" or grid.domains_dir() is not None)


def _ablation(name: str, output: str, kind: str, paired: bool = True) -> Report:
    shapes = lambda grid: [grid.C["ablation"]["shape"]]  # noqa: E731
    return Report(
        name=name, output=output, category="Figures" if kind == "figure" else "Tables", kind=kind,
        renderer=f"reports.render:{name}", enabled=lambda grid: _enabled(grid, name),
        inputs=lambda grid: grid.eval_files(_rows(grid, name, paired), shapes(grid), grid.budget, grid.mc_tasks),
        needs=lambda grid: [*(path for _, path in _artifacts(grid, name)),
                            *(curve_dirs(_curves(grid, name)) if paired else [])],
        cfg=lambda grid: grid.report_cfg(_rows(grid, name, paired), shapes(grid), grid.budget,
                                         artifacts=_artifacts(grid, name),
                                         **({"curves": _curves(grid, name)} if paired else {})))


def _curves(grid: Grid, report: str) -> list[list]:
    return grid.curves(_rows(grid, report, paired=True), [grid.C["ablation"]["shape"]], grid.budget)


TABLE4 = _ablation("table4", "reports/table4.md", "table")
TABLE5 = _ablation("table5", "reports/table5.md", "table")
FIG4 = _ablation("fig4", "reports/fig4.png", "figure", paired=False)
