"""Table 3: every `methods:` row on every shape in Rouge-L on the generation tasks; Tables 7
and 8, the paper's appendix, are the same grid at other budgets (`appendix.table7`, `table8`)."""

from harness.workflow.report import Report
from reports.render import grid_report, grid_table, paired_block
from reports.tables.table1 import Budget, appendix_budget, appendix_enabled


def generation(name: str, title: str, budget: Budget, enabled) -> Report:
    return Report(
        name=name, output=f"reports/{name}.md", category="Tables", kind="table", renderer="reports.tables.table3:render",
        enabled=enabled, inputs=lambda grid: grid.eval_files(grid.rows, grid.shapes, budget(grid), grid.gen_tasks),
        cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, budget(grid), tasks="generation_tasks",
                                         title=title))


TABLE3 = generation("table3", "Table 3", lambda grid: grid.budget, lambda grid: bool(grid.gen_tasks))
TABLE7 = generation("table7", "Table 7", appendix_budget("table7"), appendix_enabled("table7", True))
TABLE8 = generation("table8", "Table 8", appendix_budget("table8"), appendix_enabled("table8", True))


KNOWLEDGE = "knowledge"  # the stage name of Table 3's fact-recall view of the same evaluations


def _knowledge_view(results: list[dict]) -> list[dict]:
    """The generation evaluations that carry a fact-recall score, with it as their value and item
    scores (so the grid and the paired differences read it like any other stage)."""
    return [{**r, "value": r["knowledge"], "stage": KNOWLEDGE,
             "items": [{**i, "score": i["knowledge"]} for i in r["items"]]}
            for r in results if "knowledge" in r and all("knowledge" in i for i in r.get("items", [{}]))]


def render(cfg: dict, results: list[dict]) -> str:
    """Table 3 in Rouge-L (the paper's), then, where the records carry facts (the micro world), the
    knowledge score of the same responses: Rouge-L also rewards a response that copies the task's
    template with another entity's answer, the knowledge score does not."""
    rouge = grid_report(
        cfg, results, "generation", f"{cfg.get('title', 'Table 3')}: instruction following (Rouge-L)",
        "Instruction following after pre-training and SFT on each task.",
        "Rouge-L F x100 (stemmed, best reference), MiniLLM's protocol: sampling at temperature 1 "
        "averaged over the generation seeds of the profile. Paper numbers are the paper's Table 3 "
        "(Table 7 / 8 at 2B / 10B) for the paper shape each micro shape mirrors.\n\n", paper_columns=5)
    knowledge = _knowledge_view(results)
    if not knowledge:
        return rouge
    return (rouge + "\n## Knowledge score: the gold facts each response states\n\n"
            "Share (x100) of the test item's gold facts (the entity's answer: a capital, a drug, a holding) that "
            "the response states as whole words, averaged over the generation seeds (`evals.generation."
            "fact_recall`). Answering each test instruction with the train response of its pattern, the entity "
            "swapped in, scores high Rouge-L and 0 here (the template floor in `reports/signal.md`).\n\n"
            + grid_table(cfg, knowledge, {}, paper_avg=False, stage=KNOWLEDGE) + paired_block(cfg, knowledge, KNOWLEDGE))
