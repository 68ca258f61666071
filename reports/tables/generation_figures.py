"""Figures 2 and 3 (`figures:`): Rouge-L against the pre-training budget, and the SFT curves
(dev Rouge-L, training loss) on one task, for the rows named in `figures.rows` on one shape.
Figures 5-7, the paper's appendix, are Figure 2 on other shapes (`appendix.fig5` ...)."""

from typing import Callable

from harness.grid import Grid
from reports.plugin import Report
from reports.tables.table1 import appendix_enabled


def enabled(grid: Grid) -> bool:
    return bool(grid.gen_tasks) and "figures" in grid.C


def rows(grid: Grid):
    return [r for r in grid.rows if r.label in grid.C["figures"]["rows"]]


def _cfg(grid: Grid, **extra) -> str:
    return grid.report_cfg(rows(grid), [grid.C["figures"]["shape"]], grid.budget, tasks="generation_tasks", **extra)


def _curve_dirs(grid: Grid) -> list[tuple]:
    fig = grid.C["figures"]
    return [(m, s, label, seed, grid.student(m, s, fig["shape"], seed)
             + f"/{grid.budget}/sft/{grid.sft_task(fig['curve_task'])}")
            for m, s, label in rows(grid) for seed in grid.C["seeds"]]


def by_budget(name: str, title: str, shape: Callable[[Grid], str], on: Callable[[Grid], bool]) -> Report:
    """Rouge-L against the pre-training budget on one shape (Figure 2 and the appendix's 5-7)."""
    return Report(
        name=name, output=f"reports/{name}.png", category="Figures", kind="figure", renderer="reports.render:fig2",
        enabled=on,
        inputs=lambda grid: [f for b in grid.C["budgets"]
                             for f in grid.eval_files(rows(grid), [shape(grid)], b, grid.gen_tasks)],
        cfg=lambda grid: grid.report_cfg(rows(grid), [shape(grid)], grid.budget, tasks="generation_tasks", title=title,
                                         budgets=[[b, spec["tokens"], spec.get("paper")]
                                                  for b, spec in grid.C["budgets"].items()]))


def _appendix(name: str) -> Report:
    return by_budget(name, f"Figure {name[3:]}", lambda grid: grid.C["appendix"][name],
                     lambda grid: enabled(grid) and appendix_enabled(name)(grid))


FIG2 = by_budget("fig2", "Figure 2", lambda grid: grid.C["figures"]["shape"], enabled)
FIG5, FIG6, FIG7 = (_appendix(f"fig{n}") for n in (5, 6, 7))

FIG3 = Report(
    name="fig3", output="reports/fig3.png", category="Figures", kind="log-figure", renderer="reports.render:fig3",
    enabled=enabled, inputs=lambda grid: [d for *_, d in _curve_dirs(grid)],
    cfg=lambda grid: _cfg(grid, curves=[[m, s, label, seed, d + "/train_log.jsonl"]
                                        for m, s, label, seed, d in _curve_dirs(grid)],
                          task=grid.C["figures"]["curve_task"], epochs=grid.C["sft_generation"]["epochs"]))
