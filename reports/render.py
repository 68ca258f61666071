"""One renderer from evaluation JSON to the paper's tables in Markdown.

Every cell shows ours as `mean ± half-width of the 95% CI` over seeds
(Student's t; a single seed shows the mean alone), then the paper's number in
parentheses where the paper reports one (`reports/paper_numbers.yaml`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import statistics
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import yaml

from harness.errors import HarnessError
from harness.io import atomic_write_text

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")
REQUIRED = ("method", "source", "shape_name", "seed", "task", "value")


@lru_cache(maxsize=1)
def paper_numbers() -> dict:
    return yaml.safe_load(PAPER_NUMBERS.read_text())


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Mean and half-width of its 95% confidence interval (None for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    from scipy.stats import t

    return mean, t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def cell(values: list[float], paper: float | None) -> str:
    if not values:
        ours = "–"
    else:
        mean, half = mean_ci(values)
        ours = f"{mean:.2f}" if half is None else f"{mean:.2f} ± {half:.2f}"
    return ours if paper is None else f"{ours} ({paper:.2f})"


def load_results(paths: list[Path]) -> list[dict]:
    results = []
    for path in paths:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HarnessError(f"cannot read evaluation result {path}: {e}") from None
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise HarnessError(f"evaluation result {path} lacks {', '.join(missing)}")
        results.append(record)
    if not results:
        raise HarnessError("no evaluation results to report")
    return results


def _stamp(cfg: dict, what: str) -> str:
    seeds = ", ".join(map(str, cfg["seeds"]))
    paper_budget = f" (the paper's {cfg['budget_paper']})" if cfg.get("budget_paper") else ""
    return (f"Profile `{cfg['profile']}` · seeds {seeds} · pre-training budget `{cfg['budget']}` = "
            f"{cfg['budget_tokens']:,} tokens{paper_budget} · rendered {_dt.date.today().isoformat()}.\n\n"
            f"{what} Each cell: ours, mean ± 95% CI over seeds (Student's t), then (the paper's number).\n")


def grid_table(cfg: dict, results: list[dict], paper: dict, paper_avg: bool) -> str:
    """A block per student shape, a row per `cfg["rows"]` entry, a column per task + Avg.

    `paper[shape][row label][task]` holds the paper's numbers (`avg` for the Avg. column,
    shown only when `paper_avg`, i.e. our columns are the paper table's columns)."""
    per_seed: dict[tuple, dict[int, float]] = defaultdict(dict)  # (row, shape, task) -> seed -> value
    labels = {(m, s): label for m, s, label in cfg["rows"]}
    tasks = [name for name, _ in cfg["tasks"]]
    for r in results:
        label = labels.get((r["method"], r["source"]))
        if label is not None and r["task"] in tasks:
            per_seed[(label, r["shape_name"], r["task"])][r["seed"]] = r["value"]
    head = ["Shape & Params", "Method", *(label for _, label in cfg["tasks"]), "Avg."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shape, spec in cfg["shapes"]:
        paper_shape = paper.get(spec.get("paper", shape), {})
        for i, (_, _, label) in enumerate(cfg["rows"]):
            paper_row = paper_shape.get(label, {})
            cells, seed_avgs = [], defaultdict(list)
            for task in tasks:
                by_seed = per_seed.get((label, shape, task), {})
                cells.append(cell(list(by_seed.values()), paper_row.get(task)))
                for seed, v in by_seed.items():
                    seed_avgs[seed].append(v)
            # Avg.: the task mean of each seed that has every task, then its CI over seeds
            avgs = [statistics.fmean(v) for v in seed_avgs.values() if len(v) == len(tasks)]
            cells.append(cell(avgs, paper_row.get("avg") if paper_avg else None))
            first = f"{spec.get('label', '')} {shape}".strip() if i == 0 else ""
            lines.append("| " + " | ".join([first, label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def table1(cfg: dict, results: list[dict]) -> str:
    paper = paper_numbers()["understanding"].get(cfg.get("budget_paper") or "", {})
    title = "# Table 1: language understanding (accuracy %)\n\n"
    note = ("Paper numbers are the paper's Table 1 for the paper shape each micro shape mirrors; "
            "they come from 267M–877M students pre-trained on billions of tokens, ours from the "
            "profile's students, so compare orderings and gaps, not absolute values.\n\n")
    return title + _stamp(cfg, "Language understanding after pre-training and SFT on each task.") + "\n" \
        + note + grid_table(cfg, results, paper, paper_avg=len(cfg["tasks"]) == 6)


def table3(cfg: dict, results: list[dict]) -> str:
    paper = paper_numbers()["generation"].get(cfg.get("budget_paper") or "", {})
    title = "# Table 3: instruction following (Rouge-L)\n\n"
    note = ("Rouge-L F x100 (stemmed, best reference), MiniLLM's protocol: sampling at temperature 1 "
            "averaged over the generation seeds of the profile. Paper numbers are the paper's Table 3 "
            "(Table 7 / 8 at 2B / 10B) for the paper shape each micro shape mirrors.\n\n")
    return title + _stamp(cfg, "Instruction following after pre-training and SFT on each task.") + "\n" \
        + note + grid_table(cfg, results, paper, paper_avg=len(cfg["tasks"]) == 5)


def _ablation(cfg: dict, results: list[dict], title: str, section: str, what: str) -> str:
    """Tables 4 and 5: MASA variants on one student; the paper's rows are keyed by variant label."""
    (shape, spec), = cfg["shapes"]
    paper = {spec.get("paper", shape): paper_numbers()[section]}
    source = cfg["rows"][0][1]
    note = (f"Student `{shape}`, source `{source}`. The paper's columns include generation tasks "
            "(DollyEval, S-NI, UnNI); only the columns this profile evaluates are shown.\n\n")
    return f"# {title}\n\n" + _stamp(cfg, what) + "\n" + note + grid_table(cfg, results, paper, paper_avg=False)


def table4(cfg: dict, results: list[dict]) -> str:
    return _ablation(cfg, results, "Table 4: ablation of MASA's modules (accuracy %)", "ablation",
                     "Without spectral alignment (lambda = 0), without adaptive scaling (truncation), full MASA.")


def table5(cfg: dict, results: list[dict]) -> str:
    return _ablation(cfg, results, "Table 5: gene-matrix size, M/W ratio (accuracy %)", "ratio",
                     "Gene matrices of r^2 / (d_in d_out) = 3, 12, 23 and 40 % of each source FFN weight.")


def fig4(cfg: dict, results: list[dict], out: Path) -> None:
    """Figure 4: accuracy per task for alignment on each single domain vs all domains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {(m, s): label for m, s, label in cfg["rows"]}
    tasks = cfg["tasks"]
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(tasks), 4.2))
    width = 0.8 / len(cfg["rows"])
    for i, (method, source, label) in enumerate(cfg["rows"]):
        values = [[r["value"] for r in results if (r["method"], r["source"], r["task"]) == (method, source, task)]
                  for task, _ in tasks]
        stats = [mean_ci(v) if v else (float("nan"), None) for v in values]
        xs = [j + (i - (len(cfg["rows"]) - 1) / 2) * width for j in range(len(tasks))]
        ax.bar(xs, [m for m, _ in stats], width, yerr=[h or 0 for _, h in stats], capsize=2, label=label)
    ax.set_xticks(range(len(tasks)), [label for _, label in tasks])
    ax.set_ylabel("accuracy (%), mean ± 95% CI over seeds")
    (shape, _), = cfg["shapes"]
    ax.set_title(f"Figure 4: alignment data domains · profile {cfg['profile']} · student {shape} · "
                 f"seeds {', '.join(map(str, cfg['seeds']))}", fontsize=9)
    ax.legend(title="alignment data", fontsize=8, ncol=2)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)


TABLES = {"table1": table1, "table3": table3, "table4": table4, "table5": table5}
FIGURES = {"fig4": fig4}


def render(name: str, cfg: dict, inputs: list[Path], out: Path) -> None:
    if name in FIGURES:
        FIGURES[name](cfg, load_results(inputs), out)
    elif name in TABLES:
        atomic_write_text(out, TABLES[name](cfg, load_results(inputs)))
    else:
        raise HarnessError(f"unknown report {name!r}; known: {', '.join([*TABLES, *FIGURES])}")
