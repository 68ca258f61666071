"""The parametric-knowledge-transfer table (`pkt:`, LaTen's Table 1 layout): rows that adapt the
plain student of one shape before SFT on each task, paired by seed with `pkt.compare_to` (and
`pkt.also_compare_to`); the reference source fine-tuned on each task on top."""

import statistics
from collections import defaultdict

from harness.workflow.config import must_be_method, must_be_one_of, must_name
from harness.workflow.grid import Grid, Row, as_json, labelled_rows, row_by_label
from harness.workflow.report import Report, Section
from reports.paired import SFT, stage_of
from reports.render import cell, paired_block, paper_numbers, stamp


def pkt_rows(config: dict) -> list[Row]:
    """The rows of the parametric-knowledge-transfer table."""
    return labelled_rows(config, config.get("pkt", {}).get("rows", []))


def reference_row(config: dict) -> Row:
    """The row the paired differences are to: `pkt.compare_to`, else the first."""
    return row_by_label(pkt_rows(config), config["pkt"].get("compare_to"))


def extra_reference_rows(config: dict) -> list[Row]:
    """The further references (`pkt.also_compare_to`): a paired block each."""
    return [row_by_label(pkt_rows(config), label) for label in config["pkt"].get("also_compare_to", [])]


def cfg(grid: Grid) -> str:
    C, pkt = grid.C, grid.C["pkt"]
    return as_json(profile=grid.profile, seeds=C["seeds"], budget=pkt["budget"],
                   budget_paper=C["budgets"][pkt["budget"]].get("paper"),
                   budget_tokens=C["budgets"][pkt["budget"]]["tokens"], rows=[list(r) for r in pkt_rows(C)],
                   shapes=[[pkt["shape"], C["shapes"][pkt["shape"]]]],
                   tasks=[[t, {**C["tasks"], **C.get("generation_tasks", {})}[t]["label"]] for t in pkt["tasks"]],
                   reference=list(reference_row(C)), statistics=C.get("statistics", {}),
                   also_compare_to=[list(r) for r in extra_reference_rows(C)],
                   reference_source=grid.source_labels([pkt["reference"]])[0])


def inputs(grid: Grid) -> list[str]:
    pkt = grid.C["pkt"]
    return [*grid.source_evals([pkt["reference"]], pkt["tasks"], variants=("sft",)),
            *grid.eval_files(pkt_rows(grid.C), [pkt["shape"]], pkt["budget"], pkt["tasks"])]


TABLE_PKT = Report(
    name="table_pkt", output="reports/table_pkt.md", category="Tables", kind="table",
    renderer="reports.tables.table_pkt:render", enabled=lambda grid: "pkt" in grid.C, inputs=inputs, cfg=cfg)


def _check(config: dict) -> None:
    pkt = config["pkt"]
    must_name(config, "pkt.shape", "shape", pkt["shape"], "shapes")
    must_name(config, "pkt.budget", "budget", pkt["budget"], "budgets")
    must_name(config, "pkt.reference", "source", pkt["reference"], "sources")
    tasks = [*config["tasks"], *config.get("generation_tasks", {})]
    for task in pkt["tasks"]:
        must_be_one_of("pkt.tasks", "task", task, tasks)
    for i, row in enumerate(pkt["rows"]):
        must_be_method(f"pkt.rows[{i}]", row["name"])
        if "source" in row:
            must_name(config, f"pkt.rows[{i}]", "source", row["source"], "sources")
    labels = [label for *_, label in pkt_rows(config)]
    for key, named in (("compare_to", [pkt["compare_to"]] if "compare_to" in pkt else []),
                       ("also_compare_to", pkt.get("also_compare_to", []))):
        for label in named:
            must_be_one_of(f"pkt.{key}", "row", label, labels)


PKT = Section("pkt", """
type: object
description: the parametric-knowledge-transfer table (LaTen paper, Table 1)
additionalProperties: false
required: [shape, budget, tasks, reference, rows]
properties:
  shape: {type: string, description: the plain student's shape}
  budget: {type: string, description: its pre-training budget}
  tasks: {type: array, minItems: 1, items: {type: string}, description: the columns (multiple-choice or generation tasks)}
  reference: {type: string, description: the source fine-tuned on each task (the top row)}
  compare_to: {type: string, description: "label of the row the paired differences are to (default: the first)"}
  also_compare_to: {type: array, items: {type: string}, description: more reference rows, a paired block each}
  rows: {type: array, minItems: 1, items: {$ref: "#/$defs/row"}, description: "the rows: registered methods, labelled"}
""", check=_check, rows=pkt_rows)


def render(cfg: dict, results: list[dict]) -> str:
    """The LaTen paper's Table 1 layout: the source fine-tuned on each task, then each way of
    adapting the Scratch student before (or instead of) SFT, then each row's paired difference
    to the reference row (every row starts from the same pre-trained student)."""
    tasks = [name for name, _ in cfg["tasks"]]
    (shape, _), = cfg["shapes"]
    ref_source, ref_label = cfg["reference_source"]

    def per_seed(method, source, shape_name) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = defaultdict(dict)
        for r in results:
            if (r["method"], r["source"], r["shape_name"]) == (method, source, shape_name) and r["task"] in tasks \
                    and stage_of(r) == SFT:
                out[r["seed"]][r["task"]] = r["value"]
        return out

    head = ["Model", *(label for _, label in cfg["tasks"]), "Avg."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [(f"{ref_label}-SFT (source)", per_seed("source-sft", ref_source, ref_source))]
    rows += [(label, per_seed(m, s, shape)) for m, s, label in cfg["rows"]]
    for label, values in rows:
        cells = [cell([v[t] for v in values.values() if t in v], None) for t in tasks]
        avgs = [statistics.fmean(v.values()) for v in values.values() if len(v) == len(tasks)]
        lines.append("| " + " | ".join([label, *cells, cell(avgs, None)]) + " |")
    paper = paper_numbers()["pkt"]
    paper_lines = ["| " + " | ".join(["Paper row (Llama-2 13B → 7B)", *paper["columns"], "Our row"]) + " |",
                   "|" + "---|" * (len(paper["columns"]) + 2)]
    for row in paper["rows"]:
        ours = {"source": f"{ref_label}-SFT (source)", None: "–"}.get(row["ours"], row["ours"])
        paper_lines.append("| " + " | ".join([row["name"], *(f"{v:.2f}" for v in row["values"]), ours]) + " |")
    note = (f"Student: the Scratch `{shape}` pre-trained on `{cfg['budget']}`; each row adapts it (LoRA rows "
            "train rank-16 adapters, merged after SFT) and fine-tunes it on each task's train split, except the "
            "no-SFT rows. The source row is the source fine-tuned the same way (seed 0).\n\n")
    return ("# Parametric knowledge transfer (LaTen paper, Table 1 layout)\n\n"
            + stamp(cfg, "Accuracy % (Rouge-L for generation tasks) after adaptation and SFT.", paper_in_cells=False)
            + "\n" + note + "\n".join(lines) + "\n" + paired_block(cfg, results)
            + "".join(paired_block({**cfg, "reference": ref}, results) for ref in cfg.get("also_compare_to", []))
            + "\n\nThe papers' numbers (LaTen's Table 1; its last row from the SemAlign paper), on their own "
              "tasks (no column matches ours):\n\n" + "\n".join(paper_lines) + "\n")
