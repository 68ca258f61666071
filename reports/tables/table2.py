"""Table 2 (`table2:`): each source before and after SFT on the generation tasks, then the
`table2.method` student from it on one shape and budget, and its share of the fine-tuned source."""

import statistics

from harness.workflow.config import must_be_method, must_name
from harness.workflow.grid import SOURCE_BASE, SOURCE_SFT, Grid
from harness.workflow.report import Report, Section
from reports.render import cell, errata, paper_numbers, stamp


def rows(grid: Grid):
    t2 = grid.C["table2"]
    return [r for r in grid.rows if r.method == t2["method"] and r.source in t2["sources"]]


def inputs(grid: Grid) -> list[str]:
    t2 = grid.C["table2"]
    return [*grid.source_evals(t2["sources"], grid.gen_tasks),
            *grid.eval_files(rows(grid), [t2["shape"]], t2["budget"], grid.gen_tasks)]


TABLE2 = Report(
    name="table2", output="reports/table2.md", category="Tables", kind="table", renderer="reports.tables.table2:render",
    enabled=lambda grid: bool(grid.gen_tasks) and "table2" in grid.C, inputs=inputs,
    cfg=lambda grid: grid.report_cfg(rows(grid), [grid.C["table2"]["shape"]], grid.C["table2"]["budget"],
                                     tasks="generation_tasks", sources=grid.source_labels(grid.C["table2"]["sources"])))


def _check(config: dict) -> None:
    t2 = config["table2"]
    must_be_method("table2.method", t2["method"])
    for s in t2["sources"]:
        must_name(config, "table2.sources", "source", s, "sources")
    must_name(config, "table2.shape", "shape", t2["shape"], "shapes")
    must_name(config, "table2.budget", "budget", t2["budget"], "budgets")


TABLE2_SECTION = Section("table2", """
type: object
description: Table 2, the sources before and after SFT against the `method` rows (MASA) on one student
additionalProperties: false
required: [method, sources, shape, budget]
properties:
  method: {type: string, description: the registered method whose rows the table shows}
  sources: {type: array, minItems: 1, items: {type: string}, description: the sources, each with its row}
  shape: {type: string, description: the student shape}
  budget: {type: string, description: the pre-training budget}
""", check=_check)


def render(cfg: dict, results: list[dict]) -> str:
    """Paper Table 2: each source before and after SFT, then the MASA student from it and its
    share of the fine-tuned source (the "% of source" rows)."""
    paper = paper_numbers()["sources_vs_masa"]
    flags = errata("sources_vs_masa", None)  # the paper's own errors in its Table 2, marked †
    tasks = [name for name, _ in cfg["tasks"]]
    (shape, spec), = cfg["shapes"]
    # each source's MASA row beside the paper's own for that source (Table 8 at 10B, Table 3 at 5B)
    per_source = paper_numbers()["generation"].get(cfg.get("budget_paper") or "", {}).get(spec.get("paper", shape), {})
    means: list[list[float | None]] = []

    def values(method, source, shape_name, task):
        return [r["value"] for r in results if (r["method"], r["source"], r["shape_name"], r["task"])
                == (method, source, shape_name, task)]

    def row(label, per_task, paper_row):
        avgs = [statistics.fmean(v) for v in zip(*per_task)] if all(per_task) else []
        cells = [cell(v, paper_row.get(t)) for v, t in zip(per_task, tasks)]
        return "| " + " | ".join([label, *cells, cell(avgs, None)]) + " |"

    head = ["Model", *(label for _, label in cfg["tasks"]), "Avg."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for source, label in cfg["sources"]:
        base = [values(SOURCE_BASE, source, source, t) for t in tasks]
        tuned = [values(SOURCE_SFT, source, source, t) for t in tasks]
        lines.append(row(label, base, paper.get(label, {})))
        lines.append(row(f"{label}-SFT", tuned, paper.get(f"{label}-SFT", {})))
        for method, src, row_label in cfg["rows"]:
            if src != source:
                continue
            student = [values(method, src, shape, t) for t in tasks]
            lines.append(row(f"{row_label} ({shape})", student, per_source.get(row_label, {})))
            means.append([statistics.fmean(v) if v else None for v in student])
            share = [[100 * statistics.fmean(s) / statistics.fmean(b)] if s and b and statistics.fmean(b) else []
                     for s, b in zip(student, tuned)]
            lines.append("| " + " | ".join([f"% of {label}-SFT", *(f"{v[0]:.1f}%" if v else "–" for v in share),
                                            "–"]) + " |")
    if len(means) > 1:
        # the paper's "MASA" row is not one student: each of its cells is the best of Table 8's
        # three MASA rows (MASA-OLMo, -OLMoE, -DeepSeek at 877M, 10B) in that column
        best = [max((m[i] for m in means if m[i] is not None), default=None) for i in range(len(tasks))]
        lines.append("| " + " | ".join(["MASA, best of sources per column", *(
            cell([] if b is None else [b], paper.get("MASA", {}).get(t), (None, "MASA", t) in flags)
            for b, t in zip(best, tasks)), "–"]) + " |")
    note = ("Sources score their prompts before and after SFT on each task (seed 0); students are means over "
            "seeds. Paper numbers: Table 2 (7B sources), and beside each MASA student the paper's own row for "
            "that source (Table 8, 877M). The paper's Table 2 \"MASA\" row is a composite: each cell is the best "
            "of its three sources' MASA students in that column (Table 8's rows; no single student scores it), "
            "so it sits beside ours built the same way, the per-column best of the rows above.\n\n")
    shown = [f"- † MASA, {dict(cfg['tasks']).get(t, t)}: {text}" for (_, _, t), text in flags.items()
             if t in tasks and len(means) > 1]
    errors = "\n\nThe paper's own errors, beside its numbers as printed:\n\n" + "\n".join(shown) + "\n" if shown else "\n"
    return "# Table 2: sources vs the largest MASA student (Rouge-L)\n\n" + stamp(
        cfg, f"Student `{shape}` at budget `{cfg['budget']}`.") + "\n" + note + "\n".join(lines) + errors
