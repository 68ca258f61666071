"""Tables 4 and 5 and Figure 4 (`ablation:`): MASA's variants on one student shape. The tables
put the reference row (Scratch) first, the base of their paired differences."""

from pathlib import Path

from harness.workflow.config import must_be_method, must_name
from harness.workflow.grid import Grid, Row, curve_dirs, labelled_rows
from harness.io import read_json
from harness.workflow.report import Report, Section
from harness.analysis.stats import t_interval
from reports.loss_view import rows_section
from reports.render import grid_table, paired_block, paper_numbers, pyplot, save_figure, stamp

REPORTS = ("table4", "table5", "fig4")


def ablation_rows(config: dict, report: str) -> list[Row]:
    """The rows of an ablation report, all from `ablation.source`."""
    ab = config["ablation"]
    return labelled_rows(config, [{"name": v} if isinstance(v, str) else v for v in ab[report]], ab["source"])


def _rows(grid: Grid, report: str, paired: bool):
    variants = ablation_rows(grid.C, report) if "ablation" in grid.C else []
    return [grid.reference, *variants] if paired else variants


def _artifacts(grid: Grid, report: str) -> list[list[str]]:
    """[label, artifact directory] of each row that extracts (its genes' size goes under the table)."""
    rows = ((label, grid.init_inputs(m, s).get("artifact")) for m, s, label in _rows(grid, report, paired=False))
    return [[label, artifact] for label, artifact in rows if artifact]


def _enabled(grid: Grid, report: str) -> bool:
    """Figure 4 aligns on one corpus domain at a time: only a corpus with domains has it."""
    return "ablation" in grid.C and (report != "fig4" or grid.domains_dir() is not None)


def generation_budget(config: dict, report: str) -> str:
    """The budget of a table's generation columns: `ablation.generation_budget.<table>`, else the
    table's own. The paper's Table 5 takes them at 10B (its 23 % row's Rouge-L cells are Table 8's)."""
    return config["ablation"].get("generation_budget", {}).get(report) or config["report_budget"]


def _generation(grid: Grid, report: str) -> dict:
    """Tables 4 and 5's generation columns: their budget and tasks (none for Figure 4)."""
    if report == "fig4" or not grid.gen_tasks:
        return {}
    budget = generation_budget(grid.C, report)
    return {"budget": budget, "budget_paper": grid.C["budgets"][budget].get("paper"),
            "budget_tokens": grid.C["budgets"][budget]["tokens"],
            "tasks": [[name, grid.C["generation_tasks"][name]["label"]] for name in grid.gen_tasks]}


def _ablation(name: str, output: str, kind: str, paired: bool = True) -> Report:
    shapes = lambda grid: [grid.C["ablation"]["shape"]]  # noqa: E731

    def inputs(grid: Grid) -> list[str]:
        rows, generation = _rows(grid, name, paired), _generation(grid, name)
        return [*grid.eval_files(rows, shapes(grid), grid.budget, grid.mc_tasks),
                *(grid.eval_files(rows, shapes(grid), generation["budget"], grid.gen_tasks) if generation else [])]

    return Report(
        name=name, output=output, category="Figures" if kind == "figure" else "Tables", kind=kind,
        renderer=f"reports.tables.ablations:{name}", enabled=lambda grid: _enabled(grid, name), inputs=inputs,
        needs=lambda grid: [*(path for _, path in _artifacts(grid, name)),
                            *(curve_dirs(_curves(grid, name)) if paired else [])],
        cfg=lambda grid: grid.report_cfg(_rows(grid, name, paired), shapes(grid), grid.budget,
                                         artifacts=_artifacts(grid, name), generation=_generation(grid, name),
                                         **({"curves": _curves(grid, name)} if paired else {})))


def _curves(grid: Grid, report: str) -> list[list]:
    return grid.curves(_rows(grid, report, paired=True), [grid.C["ablation"]["shape"]], grid.budget)


TABLE4 = _ablation("table4", "reports/table4.md", "table")
TABLE5 = _ablation("table5", "reports/table5.md", "table")
FIG4 = _ablation("fig4", "reports/fig4.png", "figure", paired=False)


def _check(config: dict) -> None:
    ab = config["ablation"]
    must_name(config, "ablation.shape", "shape", ab["shape"], "shapes")
    must_name(config, "ablation.source", "source", ab["source"], "sources")
    for report in REPORTS:
        for v in ab[report]:
            must_be_method(f"ablation.{report}", v if isinstance(v, str) else v["name"])
    for report, budget in ab.get("generation_budget", {}).items():
        must_name(config, f"ablation.generation_budget.{report}", "budget", budget, "budgets")


ABLATION = Section("ablation", """
type: object
description: Tables 4, 5 and Figure 4, MASA's variants (registry names) on one student and one source
additionalProperties: false
required: [shape, source, table4, table5, fig4]
properties:
  shape: {type: string, description: the student shape}
  source: {type: string, description: the source every variant transfers from}
  table4: {$ref: "#/$defs/variants", description: "Table 4's rows: the modules ablated"}
  table5: {$ref: "#/$defs/variants", description: "Table 5's rows: the gene-matrix sizes"}
  fig4: {$ref: "#/$defs/variants", description: "Figure 4's bars: the alignment data's domains"}
  generation_budget:
    type: object
    description: >-
      the budget of Table 4's and Table 5's generation columns, where it is not the table's own
      (the paper's Table 5 takes its Rouge-L cells at 10B)
    additionalProperties: false
    properties:
      table4: {type: string, description: "Table 4's generation budget (a `budgets` name)"}
      table5: {type: string, description: "Table 5's generation budget (a `budgets` name)"}
""", check=_check, rows=lambda config: [r for report in REPORTS for r in ablation_rows(config, report)])


def _ablation(cfg: dict, results: list[dict], title: str, section: str, what: str) -> str:
    """Tables 4 and 5: MASA variants on one student; the paper's rows are keyed by variant label."""
    (shape, spec), = cfg["shapes"]
    paper = {spec.get("paper", shape): paper_numbers()[section]}
    source = next(s for m, s, _ in cfg["rows"] if (m, s) != tuple(cfg["reference"][:2]))
    note = (f"Student `{shape}`, source `{source}`; the {cfg['reference'][2]} row is Table 1's. The paper's "
            "columns mix understanding and generation tasks; ours are two blocks, accuracy then Rouge-L, with "
            "the columns this profile evaluates. The paper's rows are composites, not one student each: Table 4's MASA row is, column by "
            "column, the best of its three sources' 877M MASA students (BoolQ 73.36 is MASA-OLMo's in Table 1, "
            "PIQA 56.75 and WinoGrande 50.43 MASA-DeepSeek's, the generation cells MASA-OLMo's in Table 3); "
            "Table 5's 23 % row takes its generation cells from Table 8 (10B) and others from elsewhere "
            "(CaseHOLD 82.43 is the 709M MASA-DeepSeek's). Ours are MASA from "
            f"`{source}` alone, at `{cfg['budget']}`.\n\n")
    return (f"# {title}\n\n" + stamp(cfg, what) + "\n" + note + grid_table(cfg, results, paper, paper_avg=False)
            + paired_block(cfg, results) + _generation_block(cfg, results, paper) + _gene_sizes(cfg)
            + rows_section(cfg, "the same students", curves_too=True))


def _generation_block(cfg: dict, results: list[dict], paper: dict) -> str:
    """The generation columns, in Rouge-L, of the same rows at `cfg["generation"]["budget"]`."""
    generation = cfg.get("generation")
    if not generation:
        return ""
    gen_cfg = {**cfg, **generation}
    at = generation["budget"] + (f" (paper: {generation['budget_paper']})" if generation.get("budget_paper") else "")
    ours = [r for r in results if r.get("budget_name") == generation["budget"]]
    return (f"\n## Generation (Rouge-L F x100) at {at}\n\n"
            "MiniLLM's protocol, as Table 3: sampling at temperature 1, averaged over the generation seeds.\n\n"
            + grid_table(gen_cfg, ours, paper, paper_avg=False) + paired_block(gen_cfg, ours))


def _gene_sizes(cfg: dict) -> str:
    """Each extracting row's gene matrices in all, against the source: the size L45 states
    (11.8M-38.6M, 0.17 %), beside the per-weight M/W ratio Table 5 varies."""
    rows = []
    for label, artifact in cfg.get("artifacts", []):
        genes = read_json(Path(artifact) / "manifest.json").get("genes")
        if genes:  # a manifest of a method without genes (or of older code) has none
            rows.append(f"| {label} | {genes['matrices']} | {genes['parameters']:,} | "
                        f"{genes['percent_of_source']:.3g} % of {genes['source_parameters']:,} |")
    if not rows:
        return ""
    return ("\n\nGene matrices in all (the paper, L45: 11.8M-38.6M parameters, as little as 0.17 % of the "
            "source; `size` in methods/masa.py reads it either way):\n\n| row | matrices | parameters | of the source |\n"
            "|---|---|---|---|\n" + "\n".join(rows) + "\n")


def table4(cfg: dict, results: list[dict]) -> str:
    return _ablation(cfg, results, "Table 4: ablation of MASA's modules (accuracy %)", "ablation",
                     "Without spectral alignment (lambda = 0), without adaptive scaling (truncation), full MASA.")


def table5(cfg: dict, results: list[dict]) -> str:
    return _ablation(cfg, results, "Table 5: gene-matrix size, M/W ratio (accuracy %)", "ratio",
                     "Gene matrices of r^2 / (d_in d_out) = 3, 12, 23 and 40 % of each source FFN weight.")


def fig4(cfg: dict, results: list[dict], out: Path) -> None:
    """Figure 4: accuracy per task for alignment on each single domain vs all domains."""
    plt = pyplot()
    tasks = cfg["tasks"]
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(tasks), 4.2))
    width = 0.8 / len(cfg["rows"])
    for i, (method, source, label) in enumerate(cfg["rows"]):
        values = [[r["value"] for r in results if (r["method"], r["source"], r["task"]) == (method, source, task)]
                  for task, _ in tasks]
        stats = [t_interval(v) if v else (float("nan"), None) for v in values]
        xs = [j + (i - (len(cfg["rows"]) - 1) / 2) * width for j in range(len(tasks))]
        ax.bar(xs, [m for m, _ in stats], width, yerr=[h or 0 for _, h in stats], capsize=2, label=label)
    ax.set_xticks(range(len(tasks)), [label for _, label in tasks])
    ax.set_ylabel("accuracy (%), mean ± 95% CI over seeds")
    (shape, _), = cfg["shapes"]
    ax.set_title(f"Figure 4: alignment data domains · profile {cfg['profile']} · student {shape} · "
                 f"seeds {', '.join(map(str, cfg['seeds']))}", fontsize=9)
    ax.legend(title="alignment data", fontsize=8, ncol=2)
    fig.tight_layout()
    save_figure(fig, out)
