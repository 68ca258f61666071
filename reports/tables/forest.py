"""Forest plots of the grid tables' paired differences (`reports/fig_forest_table1.png`, and Table
3's where the profile has generation tasks): each row's difference to the reference row on the
task average, per student shape, with the seed-paired t interval (thick) and the item x seed
bootstrap interval (thin): the picture of the tables' "Paired differences" blocks."""

from __future__ import annotations

from pathlib import Path

from harness.workflow.grid import Grid
from harness.workflow.report import Report
from reports.paired import SFT, differences
from reports.render import pyplot, save_figure


def points(cfg: dict, results: list[dict]) -> list[tuple[str, str, float, tuple | None, tuple]]:
    """(shape, row label, mean, t interval or None, bootstrap interval) of every row's difference on
    the task average, shapes and rows in the table's order; rows without one are left out."""
    found = differences(cfg, results, SFT)
    return [(shape, label, d.mean, d.t_interval, d.boot) for shape, _ in cfg["shapes"]
            for _, _, label in cfg["rows"] if (d := found.get((shape, label), (None, None))[1]) is not None]


def figure(cfg: dict, results: list[dict], out: Path) -> None:
    plt = pyplot()
    data = points(cfg, results)
    shapes = [shape for shape, _ in cfg["shapes"]]
    labels = [label for _, _, label in cfg["rows"] if label != cfg["reference"][2]]
    fig, axes = plt.subplots(1, len(shapes), figsize=(3.4 * len(shapes) + 1.5, 0.45 * len(labels) + 1.6),
                             sharey=True, squeeze=False)
    for ax, shape in zip(axes[0], shapes):
        for shape_, label, mean, t, boot in data:
            if shape_ != shape:
                continue
            y = len(labels) - 1 - labels.index(label)
            ax.plot(boot, [y, y], color="0.55", linewidth=1)
            if t is not None:
                ax.plot(t, [y, y], color="C0", linewidth=3)
            ax.plot([mean], [y], "o", color="C0" if boot[0] > 0 or boot[1] < 0 else "0.2", markersize=4)
        ax.axvline(0, color="0.3", linewidth=0.8, linestyle="--")
        ax.set_title(shape, fontsize=9)
        ax.set_xlabel(f"Δ vs {cfg['reference'][2]} (points, task average)", fontsize=8)
    axes[0][0].set_yticks(range(len(labels)), labels[::-1], fontsize=8)
    fig.suptitle(f"{cfg.get('title', 'Table 1')}: paired differences · profile {cfg['profile']} · budget "
                 f"{cfg['budget']} · seeds {', '.join(map(str, cfg['seeds']))}\n"
                 "thick: seed-paired t interval; thin: item × seed bootstrap (95%)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)


def _forest(name: str, tasks: str, title: str, enabled) -> Report:
    def files(grid: Grid) -> list[str]:
        return grid.eval_files(grid.rows, grid.shapes, grid.budget, getattr(grid, tasks))

    return Report(name=name, output=f"reports/{name}.png", category="Figures", kind="figure",
                  renderer="reports.tables.forest:figure", enabled=enabled, inputs=files,
                  cfg=lambda grid: grid.report_cfg(grid.rows, grid.shapes, grid.budget,
                                                   tasks="tasks" if tasks == "mc_tasks" else "generation_tasks",
                                                   title=title))


FOREST_TABLE1 = _forest("fig_forest_table1", "mc_tasks", "Table 1", lambda grid: len(grid.rows) > 1)
FOREST_TABLE3 = _forest("fig_forest_table3", "gen_tasks", "Table 3",
                        lambda grid: len(grid.rows) > 1 and bool(grid.gen_tasks))
