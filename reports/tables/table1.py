"""Table 1: every `methods:` row on every student shape, after SFT on each multiple-choice task,
paired by seed with the reference row; the same students zero-shot (and on the held-out
phrasing, in the micro world); the sources the rows transfer from, beside. Table 6, the
paper's appendix, is the same grid at another budget (`appendix.table6`)."""

from typing import Callable

from harness.workflow.config import must_name
from harness.workflow.grid import NO_SOURCE, Grid, curve_dirs
from harness.workflow.report import Report, Section
from reports.loss_view import rows_section
from reports.paired import PARAPHRASE, ZEROSHOT, stage_of
from reports.render import grid_report, grid_table, paired_block, sources_table

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
        name=name, output=f"reports/{name}.md", category="Tables", kind="table", renderer="reports.tables.table1:render",
        enabled=enabled, inputs=lambda grid: inputs(grid, budget(grid)),
        needs=lambda grid: curve_dirs(grid.curves(grid.rows, grid.shapes, budget(grid))),
        cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, budget(grid), title=title,
                                         sources=grid.source_labels(sources(grid)),
                                         curves=grid.curves(grid.rows, grid.shapes, budget(grid))))


TABLE1 = understanding("table1", "Table 1", lambda grid: grid.budget, lambda grid: True)
TABLE6 = understanding("table6", "Table 6", appendix_budget("table6"), appendix_enabled("table6"))


def _check_appendix(config: dict) -> None:
    for report, value in config["appendix"].items():
        kind = "budget" if report.startswith("table") else "shape"
        must_name(config, f"appendix.{report}", kind, value, f"{kind}s")


APPENDIX = Section("appendix", """
type: object
description: the paper's appendix (paper profile), each report at another budget or on another shape
additionalProperties: false
properties:
  table6: {type: string, description: "a budget: Table 1's grid at it (the paper: 2B)"}
  table7: {type: string, description: "a budget: Table 3's grid at it (the paper: 2B)"}
  table8: {type: string, description: "a budget: Table 3's grid at it (the paper: 10B)"}
  fig5: {type: string, description: "a shape: Figure 2 on it (the paper: 321M)"}
  fig6: {type: string, description: "a shape: Figure 2 on it (the paper: 267M)"}
  fig7: {type: string, description: "a shape: Figure 2 on it (the paper: 877M)"}
""", check=_check_appendix)


def render(cfg: dict, results: list[dict]) -> str:
    """Table 1 after SFT (the paper's), then the same students zero-shot, before any SFT."""
    after_sft = grid_report(
        cfg, results, "understanding", f"{cfg.get('title', 'Table 1')}: language understanding (accuracy %)",
        "Language understanding after pre-training and SFT on each task.",
        f"Paper numbers are the paper's {cfg.get('title', 'Table 1')} (Table 1 at 5B, Table 6 at 2B) for the paper "
        "shape each micro shape mirrors; "
        "they come from 267M–877M students pre-trained on billions of tokens, ours from the "
        "profile's students, so compare orderings and gaps, not absolute values.\n\n", paper_columns=6)
    out = after_sft
    if cfg.get("sources"):
        out += ("\n## The sources: zero-shot and after the same SFT\n\n"
                "What the rows transfer from. A source that scores near chance zero-shot has no knowledge to "
                "give; one that drops after SFT shows the SFT erasing it (`reports/signal.md`, A2).\n\n"
                + sources_table(cfg, results))
    if any(stage_of(r) == ZEROSHOT for r in results):
        out += ("\n## Zero-shot: the same students before SFT\n\n"
                "Each pre-trained student (before any adaptation or SFT) scored on every task's test split; the "
                "paper reports no zero-shot numbers.\n\n"
                + grid_table(cfg, results, {}, paper_avg=False, stage=ZEROSHOT) + paired_block(cfg, results, ZEROSHOT))
    if any(stage_of(r) == PARAPHRASE for r in results):
        out += ("\n## Held-out phrasing: the same test items in words the corpus never uses\n\n"
                "The fine-tuned students on each task's `paraphrase` split (the micro world's second, harder set: "
                "a model that recalls a fact only in the words it was stated in scores chance here).\n\n"
                + grid_table(cfg, results, {}, paper_avg=False, stage=PARAPHRASE)
                + paired_block(cfg, results, PARAPHRASE))
    return out + rows_section(cfg, "the same students")
