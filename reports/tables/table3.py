"""Table 3: every `methods:` row on every shape in Rouge-L on the generation tasks; Tables 7
and 8, the paper's appendix, are the same grid at other budgets (`appendix.table7`, `table8`)."""

from reports.plugin import Report
from reports.tables.table1 import Budget, appendix_budget, appendix_enabled


def generation(name: str, title: str, budget: Budget, enabled) -> Report:
    return Report(
        name=name, output=f"reports/{name}.md", category="Tables", kind="table", renderer="reports.render:table3",
        enabled=enabled, inputs=lambda grid: grid.eval_files(grid.rows, grid.shapes, budget(grid), grid.gen_tasks),
        cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, budget(grid), tasks="generation_tasks",
                                         title=title))


TABLE3 = generation("table3", "Table 3", lambda grid: grid.budget, lambda grid: bool(grid.gen_tasks))
TABLE7 = generation("table7", "Table 7", appendix_budget("table7"), appendix_enabled("table7", True))
TABLE8 = generation("table8", "Table 8", appendix_budget("table8"), appendix_enabled("table8", True))
