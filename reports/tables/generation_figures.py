"""Figures 2 and 3 (`figures:`): Rouge-L against the pre-training budget, and the SFT curves
(dev Rouge-L, training loss) on one task, for the rows named in `figures.rows` on one shape.
Figures 5-7, the paper's appendix, are Figure 2 on other shapes (`appendix.fig5` ...)."""

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Callable

from harness.workflow.config import must_be_row_label, must_name
from harness.errors import HarnessError
from harness.workflow.grid import Grid
from harness.workflow.report import Report, Section
from harness.analysis.stats import t_interval
from reports.render import pyplot, save_figure
from reports.tables.table1 import appendix_enabled


def enabled(grid: Grid) -> bool:
    return bool(grid.gen_tasks) and "figures" in grid.C


def rows(grid: Grid):
    return [r for r in grid.rows if r.label in grid.C["figures"]["rows"]]


def _cfg(grid: Grid, **extra) -> str:
    return grid.report_cfg(rows(grid), [grid.C["figures"]["shape"]], grid.budget, tasks="generation_tasks", **extra)


def _curve_dirs(grid: Grid) -> list[tuple]:
    fig = grid.C["figures"]
    return [(m, s, label, seed, grid.student(m, s, fig["shape"], seed)
             + f"/{grid.budget}/sft/{grid.sft_task(fig['curve_task'])}")
            for m, s, label in rows(grid) for seed in grid.C["seeds"]]


def by_budget(name: str, title: str, shape: Callable[[Grid], str], on: Callable[[Grid], bool]) -> Report:
    """Rouge-L against the pre-training budget on one shape (Figure 2 and the appendix's 5-7)."""
    return Report(
        name=name, output=f"reports/{name}.png", category="Figures", kind="figure", renderer="reports.tables.generation_figures:fig2",
        enabled=on,
        inputs=lambda grid: [f for b in grid.C["budgets"]
                             for f in grid.eval_files(rows(grid), [shape(grid)], b, grid.gen_tasks)],
        cfg=lambda grid: grid.report_cfg(rows(grid), [shape(grid)], grid.budget, tasks="generation_tasks", title=title,
                                         budgets=[[b, spec["tokens"], spec.get("paper")]
                                                  for b, spec in grid.C["budgets"].items()]))


def _appendix(name: str) -> Report:
    return by_budget(name, f"Figure {name[3:]}", lambda grid: grid.C["appendix"][name],
                     lambda grid: enabled(grid) and appendix_enabled(name)(grid))


FIG2 = by_budget("fig2", "Figure 2", lambda grid: grid.C["figures"]["shape"], enabled)
FIG5, FIG6, FIG7 = (_appendix(f"fig{n}") for n in (5, 6, 7))

FIG3 = Report(
    name="fig3", output="reports/fig3.png", category="Figures", kind="log-figure", renderer="reports.tables.generation_figures:fig3",
    enabled=enabled, inputs=lambda grid: [d for *_, d in _curve_dirs(grid)],
    cfg=lambda grid: _cfg(grid, curves=[[m, s, label, seed, d + "/train_log.jsonl"]
                                        for m, s, label, seed, d in _curve_dirs(grid)],
                          task=grid.C["figures"]["curve_task"], epochs=grid.C["sft_generation"]["epochs"]))


def _check(config: dict) -> None:
    fig = config["figures"]
    must_name(config, "figures.shape", "shape", fig["shape"], "shapes")
    must_name(config, "figures.curve_task", "generation task", fig["curve_task"], "generation_tasks")
    for label in fig["rows"]:
        must_be_row_label(config, "figures.rows", label)


FIGURES = Section("figures", """
type: object
description: Figures 2 and 3, rows (by label) on one student shape
additionalProperties: false
required: [shape, rows, curve_task]
properties:
  shape: {type: string, description: the student shape}
  rows: {type: array, minItems: 1, items: {type: string}, description: labels of `methods` rows}
  curve_task: {type: string, description: "the generation task whose SFT curves Figure 3 draws"}
""", check=_check)


def fig2(cfg: dict, results: list[dict], out: Path) -> None:
    """Figure 2: Rouge-L per task against the pre-training budget, one line per row."""
    plt = pyplot()
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
    save_figure(fig, out)


def fig3(cfg: dict, out: Path) -> None:
    """Figure 3: dev Rouge-L and training loss during SFT on one task, read from the SFT logs."""
    plt = pyplot()
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
    save_figure(fig, out)
