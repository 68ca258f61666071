"""reports/results.{csv,parquet}: the tables' scores as one tidy table that reproduces a cell."""

import pandas as pd
import pytest

from harness.workflow.config import load_profile
from harness.workflow.grid import Grid
from harness.workflow.records import place
from harness.workflow.report import enabled_reports, load_report
from tests.analysis.test_stats import TASKS, plant

CFG = {"profile": "planted", "seeds": list(range(5)), "budget": "b", "budget_paper": None, "budget_tokens": 1,
       "rows": [["scratch", "none", "Scratch"], ["effect", "none", "Effect"], ["null", "none", "Null"]],
       "shapes": [["S", {"label": "toy"}]], "tasks": [[t, t.upper()] for t in TASKS],
       "reference": ["scratch", "none", "Scratch"], "statistics": {"resamples": 200}}


@pytest.mark.parametrize("name, read", [("results_csv", pd.read_csv), ("results_parquet", pd.read_parquet)])
def test_the_tidy_results_reproduce_a_table_cell(tmp_path, name, read):
    files = plant(tmp_path, n_items=40, seeds=5)
    load_report("table1").render(CFG, files, tmp_path / "table1.md")
    out = tmp_path / f"results.{name.split('_')[1]}"
    load_report(name).render({"profile": "planted", "rows": CFG["rows"]}, files, out)
    df = read(out)
    assert len(df) == len(files) and set(df.seed) == set(range(5)) and set(df.stage) == {"sft"}
    cell = df.query("row == 'Effect' and shape == 'S' and task == 'piqa' and stage == 'sft'").value.mean()
    line = next(l for l in (tmp_path / "table1.md").read_text().splitlines() if l.startswith("|  | Effect |"))
    assert f"{cell:.2f} ± " in line.split("|")[3 + TASKS.index("piqa")]
    assert not list(tmp_path.glob(".results*"))  # written atomically: no temporary file left


def test_the_results_read_what_the_other_reports_read_and_plan_nothing_new():
    grid = Grid(load_profile("smoke"))
    reports = {r.name: r for r in enabled_reports(grid)}
    others = {f for n, r in reports.items() if not n.startswith("results") and r.kind in ("table", "figure")
              for f in r.inputs(grid) if f.endswith(".json")}
    assert set(reports["results_csv"].inputs(grid)) == others
    assert others and all(place(f) is not None for f in others)  # every one an evaluation record's path
