"""Table 2 (`table2:`): each source before and after SFT on the generation tasks, then the
`table2.method` student from it on one shape and budget, and its share of the fine-tuned source."""

from harness.grid import Grid
from reports.plugin import Report


def rows(grid: Grid):
    t2 = grid.C["table2"]
    return [r for r in grid.rows if r.method == t2["method"] and r.source in t2["sources"]]


def inputs(grid: Grid) -> list[str]:
    t2 = grid.C["table2"]
    return [*grid.source_evals(t2["sources"], grid.gen_tasks),
            *grid.eval_files(rows(grid), [t2["shape"]], t2["budget"], grid.gen_tasks)]


TABLE2 = Report(
    name="table2", output="reports/table2.md", category="Tables", kind="table", renderer="reports.render:table2",
    enabled=lambda grid: bool(grid.gen_tasks) and "table2" in grid.C, inputs=inputs,
    cfg=lambda grid: grid.report_cfg(rows(grid), [grid.C["table2"]["shape"]], grid.C["table2"]["budget"],
                                     tasks="generation_tasks", sources=grid.source_labels(grid.C["table2"]["sources"])))
