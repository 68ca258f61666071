"""Table 3: every `methods:` row on every shape in Rouge-L on the generation tasks."""

from reports.plugin import Report

TABLE3 = Report(
    name="table3", output="reports/table3.md", category="Tables", kind="table", renderer="reports.render:table3",
    enabled=lambda grid: bool(grid.gen_tasks),
    inputs=lambda grid: grid.eval_files(grid.rows, grid.shapes, grid.budget, grid.gen_tasks),
    cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, grid.budget, tasks="generation_tasks"))
