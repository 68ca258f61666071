"""reports/results.csv and reports/results.parquet: every score the tables read, one row per
student (or source) x task x stage x seed, with its grid coordinates, for pandas, R or a
spreadsheet. Its inputs are the evaluation files the other reports the profile asks for read, so
it plans no job of its own. Reproducing a Table 1 cell (the mean over seeds; README):

    df = pd.read_parquet("reports/results.parquet")
    df.query("row == 'Scratch' and shape == '4L-1.2M' and budget == '250k' and task == 'boolq' "
             "and stage == 'sft'").value.mean()
"""

from __future__ import annotations

from pathlib import Path

from harness.io import atomic_write_with
from harness.workflow.grid import Grid, as_json
from harness.workflow.report import REPORTS, Report, load_report, section_rows

COLUMNS = ("profile", "row", "method", "source", "shape", "budget", "seed", "task", "stage", "metric", "value",
           "items", "path")
NAMES = ("results_csv", "results_parquet")


def inputs(grid: Grid) -> list[str]:
    """The evaluation JSON every other enabled table and figure renders from, but those `all`
    leaves out (`all_skips`: the paper's PKT table stays its own target, its jobs too)."""
    skipped = {*NAMES, *grid.C.get("all_skips", [])}
    others = (load_report(name) for name in REPORTS.names() if name not in skipped)
    files = {f for r in others if r.kind in ("table", "figure") and r.enabled(grid)
             for f in r.inputs(grid) if f.endswith(".json")}
    return sorted(files)


def cfg(grid: Grid) -> str:
    labels = {(m, s): label for m, s, label in [*section_rows(grid.C), *grid.rows]}  # `methods:` labels win
    return as_json(profile=grid.profile, rows=[[m, s, label] for (m, s), label in labels.items()])


def rows(cfg: dict, results: list[dict]) -> list[dict]:
    """One tidy row per evaluation record, in a stable order."""
    label = {(m, s): name for m, s, name in cfg["rows"]}
    out = [{"profile": cfg["profile"], "row": label.get((r["method"], r["source"]), r["method"]),
            "method": r["method"], "source": r["source"], "shape": r["shape_name"], "budget": r.get("budget_name", ""),
            "seed": r["seed"], "task": r["task"], "stage": r.get("stage", "sft"), "metric": r.get("metric", ""),
            "value": float(r["value"]), "items": len(r.get("items", [])), "path": r["_path"]} for r in results]
    return sorted(out, key=lambda row: row["path"])


def write_csv(cfg: dict, results: list[dict], out: Path) -> None:
    import pandas as pd

    atomic_write_with(out, lambda tmp: pd.DataFrame(rows(cfg, results), columns=COLUMNS).to_csv(tmp, index=False))


def write_parquet(cfg: dict, results: list[dict], out: Path) -> None:
    import pandas as pd

    atomic_write_with(out, lambda tmp: pd.DataFrame(rows(cfg, results), columns=COLUMNS).to_parquet(tmp, index=False))


def _results(name: str, output: str, writer: str) -> Report:
    return Report(name=name, output=output, category="Results", kind="figure",
                  renderer=f"reports.tables.results:{writer}", enabled=lambda grid: bool(inputs(grid)),
                  inputs=inputs, cfg=cfg)


RESULTS_CSV = _results("results_csv", "reports/results.csv", "write_csv")
RESULTS_PARQUET = _results("results_parquet", "reports/results.parquet", "write_parquet")
