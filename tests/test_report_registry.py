"""Reports as declarations (reports/plugin.py) behind one registry (reports/registry.py)."""

import textwrap

import pytest

from harness.config import load_profile
from harness.errors import HarnessError
from harness.grid import Grid
from reports import registry
from reports.plugin import KINDS


@pytest.mark.parametrize("name", registry.report_names())
def test_every_registered_report_loads_and_declares_itself(name):
    report = registry.load_report(name)
    assert report.name == name and report.kind in KINDS
    assert report.output.startswith("reports/") and report.output.endswith((".md", ".png"))


def test_each_profile_builds_the_reports_its_sections_ask_for():
    names = lambda profile: [r.name for r in registry.enabled_reports(Grid(load_profile(profile)))]  # noqa: E731
    assert names("smoke") == ["table1", "table3", "table2", "fig2", "fig3", "table4", "table5", "fig4",
                              "table_pkt", "table_efficiency", "fig_efficiency", "signal", "knowledge_map"]
    config = load_profile("smoke")
    for section in ("ablation", "pkt", "generation_tasks"):
        del config[section]
    assert [r.name for r in registry.enabled_reports(Grid(config))] == [
        "table1", "table_efficiency", "fig_efficiency", "signal", "knowledge_map"]
    del config["signal"]["map"]
    assert "knowledge_map" not in [r.name for r in registry.enabled_reports(Grid(config))]


def test_an_unknown_report_is_one_line():
    with pytest.raises(HarnessError, match="unknown report 'tabel1'; did you mean 'table1'"):
        registry.load_report("tabel1")


def test_a_report_from_another_package_is_planned_and_rendered(tmp_path, monkeypatch):
    """Adding a table: one file declaring a `Report` (here through the entry-point group)."""
    from importlib.metadata import EntryPoint

    (tmp_path / "my_table.py").write_text(textwrap.dedent('''
        from reports.plugin import Report

        def draw(cfg, results):
            return f"rows: {len(results)} at {cfg['budget']}\\n"

        MINE = Report(name="mine", output="reports/mine.md", category="Tables", kind="table",
                      renderer="my_table:draw", enabled=lambda grid: True,
                      inputs=lambda grid: grid.eval_files(grid.rows[:1], grid.shapes[:1], grid.budget, ["boolq"]),
                      cfg=lambda grid: grid.report_cfg(grid.rows[:1], grid.shapes[:1], grid.budget))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint("mine", "my_table:MINE", group)])
    registry.report_table.cache_clear()
    try:
        grid = Grid(load_profile("smoke"))
        mine = registry.enabled_reports(grid)[-1]
        assert mine.name == "mine" and len(mine.inputs(grid)) == len(grid.C["seeds"])
        record = tmp_path / "e.json"
        record.write_text('{"method": "scratch", "source": "none", "shape_name": "s", "seed": 0, "task": "boolq", '
                          '"value": 50.0}')
        mine.render({"budget": "250k"}, [record], tmp_path / "mine.md")
        assert (tmp_path / "mine.md").read_text() == "rows: 1 at 250k\n"
    finally:
        registry.report_table.cache_clear()


def test_the_paper_profile_plans_every_table_and_figure_of_the_paper():
    """Issue 18 item 14: Tables 1-8 and Figures 2-7 are targets of `all` on the paper profile;
    the appendix's are Table 1 / Table 3 at 2B and 10B and Figure 2 on the other shapes, each
    titled and compared with the paper's own numbers for its budget."""
    import json

    grid = Grid(load_profile("paper"))
    names = [r.name for r in registry.enabled_reports(grid)]
    assert {f"table{n}" for n in range(1, 9)} | {f"fig{n}" for n in range(2, 8)} <= set(names)
    for name, title, budget in (("table6", "Table 6", "2B"), ("table7", "Table 7", "2B"), ("table8", "Table 8", "10B")):
        report = registry.load_report(name)
        cfg = json.loads(report.cfg(grid))
        assert (cfg["title"], cfg["budget"], cfg["budget_paper"]) == (title, budget, budget)
        students = [f for f in report.inputs(grid) if "/students/" in f]
        assert students and all(f"/{budget}/" in f for f in students)
    for name, shape in (("fig2", "12L-709M"), ("fig5", "16L-321M"), ("fig6", "12L-267M"), ("fig7", "16L-877M")):
        cfg = json.loads(registry.load_report(name).cfg(grid))
        assert cfg["shapes"][0][0] == shape and [b for b, *_ in cfg["budgets"]] == ["2B", "5B", "10B"]
