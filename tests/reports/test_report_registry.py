"""Reports as declarations found in reports/tables/ by one registry (harness/workflow/report.py)."""

import textwrap

import pytest

from harness.workflow import report as registry
from harness.workflow.config import load_profile, merge, resolve
from harness.errors import HarnessError
from harness.workflow.grid import Grid
from harness.workflow.report import KINDS


@pytest.mark.parametrize("name", registry.report_names())
def test_every_registered_report_loads_and_declares_itself(name):
    report = registry.load_report(name)
    assert report.name == name and report.kind in KINDS
    assert report.output.startswith("reports/") and report.output.endswith((".md", ".png", ".csv", ".parquet"))


def test_each_profile_builds_the_reports_its_sections_ask_for():
    names = lambda profile: [r.name for r in registry.enabled_reports(Grid(load_profile(profile)))]  # noqa: E731
    assert sorted(names("smoke")) == sorted(["table1", "table3", "table2", "fig2", "fig3", "table4", "table5", "fig4",
                                             "table_pkt", "table_efficiency", "fig_efficiency", "signal",
                                             "knowledge_map", "results_csv", "results_parquet",
                                             "fig_forest_table1", "fig_forest_table3"])
    config = load_profile("smoke")
    for section in ("ablation", "pkt", "generation_tasks"):
        del config[section]
    assert sorted(r.name for r in registry.enabled_reports(Grid(config))) == [
        "fig_efficiency", "fig_forest_table1", "knowledge_map", "results_csv", "results_parquet", "signal", "table1",
        "table_efficiency"]
    del config["signal"]["map"]
    assert "knowledge_map" not in [r.name for r in registry.enabled_reports(Grid(config))]


def test_an_unknown_report_is_one_line():
    with pytest.raises(HarnessError, match="unknown report 'tabel1'; did you mean 'table1'"):
        registry.load_report("tabel1")


TOY = '''
    """A toy table: one file, its section `mine:` and its renderer."""
    from harness.workflow.config import must_name
    from harness.workflow.grid import labelled_rows
    from harness.workflow.report import Report, Section


    def render(cfg, results):
        return f"rows: {len(results)} at {cfg['budget']}\\n"


    MINE = Report(name="mine", output="reports/mine.md", category="Tables", kind="table",
                  renderer=f"{__name__}:render", enabled=lambda grid: "mine" in grid.C,
                  inputs=lambda grid: grid.eval_files(labelled_rows(grid.C, grid.C["mine"]["rows"]), [grid.C["mine"]["shape"]],
                                                      grid.budget, ["boolq"]),
                  cfg=lambda grid: grid.report_cfg(labelled_rows(grid.C, grid.C["mine"]["rows"]), [grid.C["mine"]["shape"]],
                                                   grid.budget))
    SECTION = Section("mine", """
    type: object
    additionalProperties: false
    required: [shape, rows]
    properties:
      shape: {type: string, description: the student shape}
      rows: {type: array, items: {$ref: "#/$defs/row"}, description: its rows}
    """, check=lambda config: must_name(config, "mine.shape", "shape", config["mine"]["shape"], "shapes"),
        rows=lambda config: labelled_rows(config, config["mine"]["rows"]))
'''


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """reports/tables/ plus one more file, `mine.py`, in a package of the test's own."""
    import shutil

    import reports.tables

    package = tmp_path / "toy_tables"
    shutil.copytree(reports.tables.__path__[0], package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "mine.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PACKAGE", "toy_tables")
    registry.REPORTS.clear()
    yield package
    registry.REPORTS.clear()


def test_adding_a_table_is_one_file_and_its_config_section(toy_package, tmp_path):
    """The file alone registers the report, its section's schema and checks, and the rows it runs."""
    smoke = load_profile("smoke")
    shape = next(iter(smoke["shapes"]))
    config = resolve(merge(smoke, {"mine": {"shape": shape, "rows": [{"name": "oracle-embed", "source": "twin"}]}}))
    grid = Grid(config)
    mine = registry.load_report("mine")
    assert mine in registry.enabled_reports(grid) and "oracle-embed" in registry.planned_methods(grid)
    assert len(mine.inputs(grid)) == len(config["seeds"])
    with pytest.raises(HarnessError, match="unknown key 'rowz' in mine"):
        resolve(merge(smoke, {"mine": {"shape": shape, "rows": [], "rowz": 1}}))
    with pytest.raises(HarnessError, match="mine.shape: unknown shape 'nope'"):
        resolve(merge(smoke, {"mine": {"shape": "nope", "rows": []}}))
    record = tmp_path / "e.json"
    record.write_text('{"method": "scratch", "source": "none", "shape_name": "s", "seed": 0, "task": "boolq", '
                      '"value": 50.0}')
    mine.render({"budget": "250k"}, [record], tmp_path / "mine.md")
    assert (tmp_path / "mine.md").read_text() == "rows: 1 at 250k\n"


def test_a_report_from_another_package_arrives_through_its_entry_point(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    from harness.api import plugins

    (tmp_path / "their_table.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "entry_points", lambda group: [EntryPoint("mine", "their_table:MINE", group)]
                        if group == "harness.reports" else [])
    registry.REPORTS.clear()
    try:
        assert registry.load_report("mine").renderer == "their_table:render"
        assert "mine" in registry.sections()
        monkeypatch.setattr(plugins, "entry_points", lambda group: [EntryPoint("table1", "their_table:MINE", group)]
                            if group == "harness.reports" else [])
        registry.REPORTS.clear()
        with pytest.raises(HarnessError, match="report 'table1' is registered twice"):
            registry.report_names()
    finally:
        registry.REPORTS.clear()


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


def test_tables_4_and_5_read_their_generation_columns_at_the_paper_budget():
    """Table 4's generation columns are at the table's budget; the paper profile takes Table 5's at
    10B (`ablation.generation_budget`), the multiple-choice columns staying at the report budget."""
    grid = Grid(load_profile("paper"))
    for name, generation_budget in (("table4", grid.budget), ("table5", "10B")):
        inputs = registry.load_report(name).inputs(grid)
        generation = [p for p in inputs if p.rsplit("/", 1)[1].removesuffix(".json") in grid.gen_tasks]
        multiple_choice = [p for p in inputs if p not in generation]
        assert generation and {f"/{generation_budget}/" in p for p in generation} == {True}, name
        assert multiple_choice and {f"/{grid.budget}/" in p for p in multiple_choice} == {True}, name


def test_all_skips_keeps_a_report_and_its_jobs_out_of_all():
    """The paper profile's PKT table (six 8-GPU OLMo-7B fine-tunes the paper does not have) is its
    own target: not in `all`, and not pulled in through the tidy results file either."""
    from harness.workflow.report import all_targets

    grid = Grid(load_profile("paper"))
    assert "reports/table_pkt.md" not in all_targets(grid) and "reports/table1.md" in all_targets(grid)
    results = registry.load_report("results_parquet").inputs(grid)
    assert results and not any("/semalign" in f or "/seeking" in f or "/laten" in f for f in results)
    with pytest.raises(HarnessError, match="all_skips: 'table_pk' is not a report"):
        resolve(merge(load_profile("smoke"), {"all_skips": ["table_pk"]}))


def test_a_tables_html_page_holds_its_cells_as_a_table():
    from harness.workflow.report import html_page

    page = html_page("# T\n\n| row | BoolQ |\n|---|---|\n| Scratch | 50.00 ± 1.20 (71.65) |\n", "table1")
    assert "<title>table1</title>" in page and "<h1>T</h1>" in page
    assert "<td>Scratch</td>" in page and "<td>50.00 ± 1.20 (71.65)</td>" in page
    assert registry.load_report("table1").page == "reports/table1.html"
    scripted = html_page("| row |\n|---|\n| <script>alert(1)</script> |\n\n<b>note</b> and `a<b`\n", "t")
    assert "<script>" not in scripted and "&lt;script&gt;" in scripted and "<b>" not in scripted
    assert "<code>a&lt;b</code>" in scripted
    assert registry.load_report("fig4").page is None
