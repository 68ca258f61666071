"""Table 1: every `methods:` row on every student shape, after SFT on each multiple-choice task,
paired by seed with the reference row; the same students zero-shot (and on the held-out
phrasing, in the micro world); the sources the rows transfer from, beside. Table 6, the
paper's appendix, is the same grid at another budget (`appendix.table6`)."""

from typing import Callable

from harness.grid import NO_SOURCE, Grid, curve_dirs
from reports.plugin import Report

Budget = Callable[[Grid], str]


def sources(grid: Grid) -> list[str]:
    """The sources trained here that the rows transfer from (a hub checkpoint's own evaluation
    would need its model code's opt-in in lm-eval too)."""
    return list(dict.fromkeys(s for _, s, _ in grid.rows
                              if s != NO_SOURCE and "model_path" not in grid.C["sources"][s]))


def inputs(grid: Grid, budget: str) -> list[str]:
    stages = ["sft", "zeroshot", *(["paraphrase"] if grid.paraphrase else [])]
    return [*(f for stage in stages for f in grid.eval_files(grid.rows, grid.shapes, budget, grid.mc_tasks,
                                                              stage=stage)),
            *grid.source_evals(sources(grid), grid.mc_tasks)]


def appendix_budget(name: str) -> Budget:
    return lambda grid: grid.C["appendix"][name]


def appendix_enabled(name: str, needs_generation: bool = False) -> Callable[[Grid], bool]:
    return lambda grid: name in grid.C.get("appendix", {}) and (bool(grid.gen_tasks) or not needs_generation)


def understanding(name: str, title: str, budget: Budget, enabled: Callable[[Grid], bool]) -> Report:
    return Report(
        name=name, output=f"reports/{name}.md", category="Tables", kind="table", renderer="reports.render:table1",
        enabled=enabled, inputs=lambda grid: inputs(grid, budget(grid)),
        needs=lambda grid: curve_dirs(grid.curves(grid.rows, grid.shapes, budget(grid))),
        cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, budget(grid), title=title,
                                         sources=grid.source_labels(sources(grid)),
                                         curves=grid.curves(grid.rows, grid.shapes, budget(grid))))


TABLE1 = understanding("table1", "Table 1", lambda grid: grid.budget, lambda grid: True)
TABLE6 = understanding("table6", "Table 6", appendix_budget("table6"), appendix_enabled("table6"))
