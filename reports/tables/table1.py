"""Table 1: every `methods:` row on every student shape, after SFT on each multiple-choice task,
paired by seed with the reference row; the same students zero-shot (and on the held-out
phrasing, in the micro world); the sources the rows transfer from, beside."""

from harness.grid import NO_SOURCE, Grid
from reports.plugin import Report


def sources(grid: Grid) -> list[str]:
    """The sources trained here that the rows transfer from (a hub checkpoint's own evaluation
    would need its model code's opt-in in lm-eval too)."""
    return list(dict.fromkeys(s for _, s, _ in grid.rows
                              if s != NO_SOURCE and "model_path" not in grid.C["sources"][s]))


def inputs(grid: Grid) -> list[str]:
    stages = ["sft", "zeroshot", *(["paraphrase"] if grid.paraphrase else [])]
    return [*(f for stage in stages for f in grid.eval_files(grid.rows, grid.shapes, grid.budget, grid.mc_tasks,
                                                              stage=stage)),
            *grid.source_evals(sources(grid), grid.mc_tasks)]


TABLE1 = Report(
    name="table1", output="reports/table1.md", category="Tables", kind="table", renderer="reports.render:table1",
    enabled=lambda grid: True, inputs=inputs,
    cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, grid.budget,
                                     sources=grid.source_labels(sources(grid))))
