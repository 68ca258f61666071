"""The parametric-knowledge-transfer table (`pkt:`, LaTen's Table 1 layout): rows that adapt the
plain student of one shape before SFT on each task, paired by seed with `pkt.compare_to` (and
`pkt.also_compare_to`); the reference source fine-tuned on each task on top."""

from harness.grid import Grid, as_json, pkt_extra_reference_rows, pkt_reference_row
from reports.plugin import Report


def cfg(grid: Grid) -> str:
    C, pkt = grid.C, grid.C["pkt"]
    return as_json(profile=grid.profile, seeds=C["seeds"], budget=pkt["budget"],
                   budget_paper=C["budgets"][pkt["budget"]].get("paper"),
                   budget_tokens=C["budgets"][pkt["budget"]]["tokens"], rows=[list(r) for r in grid.pkt_rows],
                   shapes=[[pkt["shape"], C["shapes"][pkt["shape"]]]],
                   tasks=[[t, {**C["tasks"], **C.get("generation_tasks", {})}[t]["label"]] for t in pkt["tasks"]],
                   reference=list(pkt_reference_row(C)), statistics=C.get("statistics", {}),
                   also_compare_to=[list(r) for r in pkt_extra_reference_rows(C)],
                   reference_source=grid.source_labels([pkt["reference"]])[0])


def inputs(grid: Grid) -> list[str]:
    pkt = grid.C["pkt"]
    return [*grid.source_evals([pkt["reference"]], pkt["tasks"], variants=("sft",)),
            *grid.eval_files(grid.pkt_rows, [pkt["shape"]], pkt["budget"], pkt["tasks"])]


TABLE_PKT = Report(
    name="table_pkt", output="reports/table_pkt.md", category="Tables", kind="table",
    renderer="reports.render:table_pkt", enabled=lambda grid: "pkt" in grid.C, inputs=inputs, cfg=cfg)
