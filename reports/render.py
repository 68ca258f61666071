"""What the tables share: cells, the shape x row grid, the paired block, the paper's numbers
and errata beside ours, the stamp every report opens with, and saving a figure atomically.
Each table's own renderer lives in its file under reports/tables/.

Every cell shows ours as `mean ± half-width of the 95% CI` over seeds (Student's t; a single
seed shows the mean alone), then the paper's number in parentheses where the paper reports one
(`reports/paper_numbers.yaml`). Under every grid table, each row's difference to the reference
row, paired by seed and test item (`reports/paired.py`).
"""

from __future__ import annotations

import datetime as _dt
import statistics
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from harness.workflow.grid import SOURCE_BASE, SOURCE_SFT
from harness.io import atomic_write_with, load_yaml
from harness.analysis.stats import t_interval
from reports.paired import SFT, paired_table, stage_of

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


def errata_notes(flags: dict, cfg: dict) -> str:
    """The notes of the flags this table shows (its shapes and rows)."""
    shown = {spec.get("paper", shape) for shape, spec in cfg["shapes"]}
    labels = {label for *_, label in cfg["rows"]}
    notes = [f"- † {shape}, {row}: {note}" for (shape, row, _), note in flags.items()
             if shape in shown and row in labels]
    return "\nThe paper's own errors, beside its numbers as printed:\n\n" + "\n".join(notes) + "\n" if notes else ""


def stamp(cfg: dict, what: str, paper_in_cells: bool = True) -> str:
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


def paired_block(cfg: dict, results: list[dict], stage: str = SFT) -> str:
    return f"\n### Paired differences to {cfg['reference'][2]}\n\n" + paired_table(cfg, results, stage)


def grid_report(cfg: dict, results: list[dict], section: str, title: str, what: str, note: str,
                 paper_columns: int) -> str:
    """Tables 1 and 3: the shape x row grid at one budget, the paper's table for that budget beside,
    then each row's paired difference to the reference row."""
    paper = paper_numbers()[section].get(cfg.get("budget_paper") or "", {})
    flags = errata(section, cfg.get("budget_paper"))
    return f"# {title}\n\n" + stamp(cfg, what) + "\n" + note + grid_table(
        cfg, results, paper, paper_avg=len(cfg["tasks"]) == paper_columns, flags=flags) + errata_notes(
        flags, cfg) + paired_block(cfg, results)


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


def save_figure(fig, out: Path) -> None:
    """Written atomically (a killed render leaves no half-drawn figure), then closed."""
    import matplotlib.pyplot as plt

    try:
        atomic_write_with(out, lambda tmp: fig.savefig(tmp, dpi=120))
    finally:
        plt.close(fig)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
