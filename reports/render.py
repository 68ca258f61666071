"""One renderer from evaluation JSON to the paper's tables in Markdown.

Every cell shows ours as `mean ± half-width of the 95% CI` over seeds
(Student's t; a single seed shows the mean alone), then the paper's number in
parentheses where the paper reports one (`reports/paper_numbers.yaml`). Under
every grid table, each row's difference to the reference row, paired by seed and
test item (`reports/paired.py`).
"""

from __future__ import annotations

import datetime as _dt
import json
import statistics
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError
from harness.io import load_yaml, read_json
from harness.grid import SOURCE_BASE, SOURCE_SFT
from harness.stats import t_interval
from reports.loss_view import rows_section
from reports.paired import PARAPHRASE, SFT, ZEROSHOT, paired_table, stage_of

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")
@lru_cache(maxsize=1)
def paper_numbers() -> dict:
    return load_yaml(PAPER_NUMBERS.read_text())


def cell(values: list[float], paper: float | None, flagged: bool = False) -> str:
    if not values:
        ours = "–"
    else:
        mean, half = t_interval(values)
        ours = f"{mean:.2f}" if half is None else f"{mean:.2f} ± {half:.2f}"
    return ours if paper is None else f"{ours} ({paper:.2f}{'†' if flagged else ''})"


def errata(section: str, budget: str | None) -> dict[tuple[str, str, str], str]:
    """{(paper shape, row, column): note} of the paper's own errors in one of its tables."""
    return {(e["shape"], e["row"], e["column"]): e["note"] for e in paper_numbers().get("errata", [])
            if (e["section"], e["budget"]) == (section, budget)}


def _errata_notes(flags: dict, cfg: dict) -> str:
    """The notes of the flags this table shows (its shapes and rows)."""
    shown = {spec.get("paper", shape) for shape, spec in cfg["shapes"]}
    labels = {label for *_, label in cfg["rows"]}
    notes = [f"- † {shape}, {row}: {note}" for (shape, row, _), note in flags.items()
             if shape in shown and row in labels]
    return "\nThe paper's own errors, beside its numbers as printed:\n\n" + "\n".join(notes) + "\n" if notes else ""


def _stamp(cfg: dict, what: str, paper_in_cells: bool = True) -> str:
    seeds = ", ".join(map(str, cfg["seeds"]))
    paper_budget = f" (the paper's {cfg['budget_paper']})" if cfg.get("budget_paper") else ""
    return (f"Profile `{cfg['profile']}` · seeds {seeds} · pre-training budget `{cfg['budget']}` = "
            f"{cfg['budget_tokens']:,} tokens{paper_budget} · rendered {_dt.date.today().isoformat()}.\n\n"
            f"{what} Each cell: ours, mean ± 95% CI over seeds (Student's t)"
            + (", then (the paper's number).\n" if paper_in_cells else ".\n"))


def grid_table(cfg: dict, results: list[dict], paper: dict, paper_avg: bool, stage: str = SFT,
               flags: dict | None = None) -> str:
    """A block per student shape, a row per `cfg["rows"]` entry, a column per task + Avg.

    `paper[shape][row label][task]` holds the paper's numbers (`avg` for the Avg. column,
    shown only when `paper_avg`, i.e. our columns are the paper table's columns); `flags`
    (`errata`) marks the paper's cells that are its own errors."""
    flags = flags or {}
    per_seed: dict[tuple, dict[int, float]] = defaultdict(dict)  # (row, shape, task) -> seed -> value
    labels = {(m, s): label for m, s, label in cfg["rows"]}
    tasks = [name for name, _ in cfg["tasks"]]
    for r in results:
        label = labels.get((r["method"], r["source"]))
        if label is not None and r["task"] in tasks and stage_of(r) == stage:
            per_seed[(label, r["shape_name"], r["task"])][r["seed"]] = r["value"]
    head = ["Shape & Params", "Method", *(label for _, label in cfg["tasks"]), "Avg."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shape, spec in cfg["shapes"]:
        paper_shape = paper.get(spec.get("paper", shape), {})
        for i, (_, _, label) in enumerate(cfg["rows"]):
            paper_row = paper_shape.get(label, {})
            flagged = lambda column: any((spec.get("paper", shape), label, c) in flags  # noqa: E731
                                         for c in (column, "*"))
            cells, seed_avgs = [], defaultdict(list)
            for task in tasks:
                by_seed = per_seed.get((label, shape, task), {})
                cells.append(cell(list(by_seed.values()), paper_row.get(task), flagged(task)))
                for seed, v in by_seed.items():
                    seed_avgs[seed].append(v)
            # Avg.: the task mean of each seed that has every task, then its CI over seeds
            avgs = [statistics.fmean(v) for v in seed_avgs.values() if len(v) == len(tasks)]
            cells.append(cell(avgs, paper_row.get("avg") if paper_avg else None, flagged("avg")))
            first = f"{spec.get('label', '')} {shape}".strip() if i == 0 else ""
            lines.append("| " + " | ".join([first, label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _paired(cfg: dict, results: list[dict], stage: str = SFT) -> str:
    return f"\n### Paired differences to {cfg['reference'][2]}\n\n" + paired_table(cfg, results, stage)


def _grid_report(cfg: dict, results: list[dict], section: str, title: str, what: str, note: str,
                 paper_columns: int) -> str:
    """Tables 1 and 3: the shape x row grid at one budget, the paper's table for that budget beside,
    then each row's paired difference to the reference row."""
    paper = paper_numbers()[section].get(cfg.get("budget_paper") or "", {})
    flags = errata(section, cfg.get("budget_paper"))
    return f"# {title}\n\n" + _stamp(cfg, what) + "\n" + note + grid_table(
        cfg, results, paper, paper_avg=len(cfg["tasks"]) == paper_columns, flags=flags) + _errata_notes(
        flags, cfg) + _paired(cfg, results)


def sources_table(cfg: dict, results: list[dict]) -> str:
    """Each of `cfg["sources"]` zero-shot and fine-tuned on every task (source evaluations, seed 0)."""
    value = {(r["method"], r["source"], r["task"]): r["value"] for r in results
             if r["method"] in (SOURCE_BASE, SOURCE_SFT)}
    tasks = [name for name, _ in cfg["tasks"]]
    head = ["Source", *(label for _, label in cfg["tasks"]), "Avg."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for source, label in cfg["sources"]:
        for method, what in ((SOURCE_BASE, "zero-shot"), (SOURCE_SFT, "after SFT")):
            vals = [value.get((method, source, t)) for t in tasks]
            avg = f"{statistics.fmean(vals):.2f}" if None not in vals else "–"
            lines.append("| " + " | ".join([f"{label} {what}", *("–" if v is None else f"{v:.2f}" for v in vals),
                                            avg]) + " |")
    return "\n".join(lines) + "\n"


def table1(cfg: dict, results: list[dict]) -> str:
    """Table 1 after SFT (the paper's), then the same students zero-shot, before any SFT."""
    after_sft = _grid_report(
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
                + grid_table(cfg, results, {}, paper_avg=False, stage=ZEROSHOT) + _paired(cfg, results, ZEROSHOT))
    if any(stage_of(r) == PARAPHRASE for r in results):
        out += ("\n## Held-out phrasing: the same test items in words the corpus never uses\n\n"
                "The fine-tuned students on each task's `paraphrase` split (the micro world's second, harder set: "
                "a model that recalls a fact only in the words it was stated in scores chance here).\n\n"
                + grid_table(cfg, results, {}, paper_avg=False, stage=PARAPHRASE)
                + _paired(cfg, results, PARAPHRASE))
    return out + rows_section(cfg, "the same students")


KNOWLEDGE = "knowledge"  # the stage name of Table 3's fact-recall view of the same evaluations


def _knowledge_view(results: list[dict]) -> list[dict]:
    """The generation evaluations that carry a fact-recall score, with it as their value and item
    scores (so the grid and the paired differences read it like any other stage)."""
    return [{**r, "value": r["knowledge"], "stage": KNOWLEDGE,
             "items": [{**i, "score": i["knowledge"]} for i in r["items"]]}
            for r in results if "knowledge" in r and all("knowledge" in i for i in r.get("items", [{}]))]


def table3(cfg: dict, results: list[dict]) -> str:
    """Table 3 in Rouge-L (the paper's), then, where the records carry facts (the micro world), the
    knowledge score of the same responses: Rouge-L also rewards a response that copies the task's
    template with another entity's answer, the knowledge score does not."""
    rouge = _grid_report(
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
            + grid_table(cfg, knowledge, {}, paper_avg=False, stage=KNOWLEDGE) + _paired(cfg, knowledge, KNOWLEDGE))


def table2(cfg: dict, results: list[dict]) -> str:
    """Paper Table 2: each source before and after SFT, then the MASA student from it and its
    share of the fine-tuned source (the "% of source" rows)."""
    paper = paper_numbers()["sources_vs_masa"]
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
            cell([] if b is None else [b], paper.get("MASA", {}).get(t)) for b, t in zip(best, tasks)), "–"]) + " |")
    note = ("Sources score their prompts before and after SFT on each task (seed 0); students are means over "
            "seeds. Paper numbers: Table 2 (7B sources), and beside each MASA student the paper's own row for "
            "that source (Table 8, 877M). The paper's Table 2 \"MASA\" row is a composite: each cell is the best "
            "of its three sources' MASA students in that column (Table 8's rows; no single student scores it), "
            "so it sits beside ours built the same way, the per-column best of the rows above.\n\n")
    return "# Table 2: sources vs the largest MASA student (Rouge-L)\n\n" + _stamp(
        cfg, f"Student `{shape}` at budget `{cfg['budget']}`.") + "\n" + note + "\n".join(lines) + "\n"


def _save_figure(fig, out: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = out.with_name(f".{out.name}.tmp.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig2(cfg: dict, results: list[dict], out: Path) -> None:
    """Figure 2: Rouge-L per task against the pre-training budget, one line per row."""
    plt = _pyplot()
    tasks = cfg["tasks"]
    (shape, _), = cfg["shapes"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.0, 3.2 * len(tasks)), 3.8), squeeze=False)
    for ax, (task, task_label) in zip(axes[0], tasks):
        for method, source, label in cfg["rows"]:
            xs, ms, hs = [], [], []
            for budget, tokens, _ in cfg["budgets"]:
                v = [r["value"] for r in results if (r["method"], r["source"], r["task"], r.get("budget_name"))
                     == (method, source, task, budget)]
                if v:
                    m, h = t_interval(v)
                    xs.append(tokens), ms.append(m), hs.append(h or 0.0)
            ax.errorbar(xs, ms, yerr=hs, marker="o", capsize=2, label=label)
        ax.set_xscale("log")
        # one labelled tick per budget, by its name (log-scale minor labels collide at 3 budgets)
        ax.set_xticks([tokens for _, tokens, _ in cfg["budgets"]], [name for name, _, _ in cfg["budgets"]])
        ax.minorticks_off()
        ax.set_title(task_label, fontsize=9)
        ax.set_xlabel("pre-training tokens")
    axes[0][0].set_ylabel("Rouge-L, mean ± 95% CI over seeds")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"{cfg.get('title', 'Figure 2')}: Rouge-L vs pre-training budget\nprofile {cfg['profile']} · student {shape} · "
                 f"seeds {', '.join(map(str, cfg['seeds']))}", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, out)


def fig3(cfg: dict, out: Path) -> None:
    """Figure 3: dev Rouge-L and training loss during SFT on one task, read from the SFT logs."""
    plt = _pyplot()
    (shape, _), = cfg["shapes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for method, source, label in cfg["rows"]:
        curves = []
        for m, s, _, seed, path in cfg["curves"]:
            if (m, s) != (method, source):
                continue
            try:
                records = [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]
            except OSError as e:
                raise HarnessError(f"fig3: cannot read SFT log {path}: {e}") from None
            last = max(r["step"] for r in records)
            curves.append(([(r["step"] / last * cfg["epochs"], r["eval"]["rougeL"]) for r in records if "eval" in r],
                           [(r["step"] / last * cfg["epochs"], r["loss"]) for r in records if "loss" in r]))
        for ax, k in ((left, 0), (right, 1)):
            points = defaultdict(list)
            for c in curves:
                for x, y in c[k]:
                    points[round(x, 6)].append(y)
            xs = sorted(points)
            ax.plot(xs, [statistics.fmean(points[x]) for x in xs], marker="o", markersize=4 if k == 0 else 2,
                    label=label)
    left.set(xlabel="epoch", ylabel="dev Rouge-L (mean over seeds)")
    right.set(xlabel="epoch", ylabel="training loss (mean over seeds)")
    left.legend(fontsize=8)
    fig.suptitle(f"Figure 3: SFT on {cfg['task']} · profile {cfg['profile']} · student {shape} · budget "
                 f"{cfg['budget']} · seeds {', '.join(map(str, cfg['seeds']))}", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, out)


def _ablation(cfg: dict, results: list[dict], title: str, section: str, what: str) -> str:
    """Tables 4 and 5: MASA variants on one student; the paper's rows are keyed by variant label."""
    (shape, spec), = cfg["shapes"]
    paper = {spec.get("paper", shape): paper_numbers()[section]}
    source = next(s for m, s, _ in cfg["rows"] if (m, s) != tuple(cfg["reference"][:2]))
    note = (f"Student `{shape}`, source `{source}`; the {cfg['reference'][2]} row is Table 1's. The paper's "
            "columns include generation tasks (DollyEval, S-NI, UnNI); only the columns this profile evaluates "
            "are shown. The paper's rows are composites, not one student each: Table 4's MASA row is, column by "
            "column, the best of its three sources' 877M MASA students (BoolQ 73.36 is MASA-OLMo's in Table 1, "
            "PIQA 56.75 and WinoGrande 50.43 MASA-DeepSeek's, the generation cells MASA-OLMo's in Table 3); "
            "Table 5's 23 % row takes its generation cells from Table 8 (10B) and others from elsewhere "
            "(CaseHOLD 82.43 is the 709M MASA-DeepSeek's). Ours are MASA from "
            f"`{source}` alone, at `{cfg['budget']}`.\n\n")
    return (f"# {title}\n\n" + _stamp(cfg, what) + "\n" + note + grid_table(cfg, results, paper, paper_avg=False)
            + _paired(cfg, results) + _gene_sizes(cfg) + rows_section(cfg, "the same students", curves_too=True))


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
    plt = _pyplot()
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
    _save_figure(fig, out)


def table_pkt(cfg: dict, results: list[dict]) -> str:
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
            + _stamp(cfg, "Accuracy % (Rouge-L for generation tasks) after adaptation and SFT.", paper_in_cells=False)
            + "\n" + note + "\n".join(lines) + "\n" + _paired(cfg, results)
            + "".join(_paired({**cfg, "reference": ref}, results) for ref in cfg.get("also_compare_to", []))
            + "\n\nThe papers' numbers (LaTen's Table 1; its last row from the SemAlign paper), on their own "
              "tasks (no column matches ours):\n\n" + "\n".join(paper_lines) + "\n")
