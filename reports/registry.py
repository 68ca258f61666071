"""Report names -> declarations (`reports/plugin.py`), resolved lazily, as the method registry
does: this table is plain strings, and packages outside this repository add reports through
the `harness.reports` entry-point group ("module:ATTRIBUTE")."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.plugins import load_target, unknown_name_message, with_entry_points

if TYPE_CHECKING:
    from harness.grid import Grid
    from reports.plugin import Report

ENTRY_POINT_GROUP = "harness.reports"

REPORTS = {
    "table1": "reports.tables.table1:TABLE1",
    "table3": "reports.tables.table3:TABLE3",
    "table2": "reports.tables.table2:TABLE2",
    "fig2": "reports.tables.generation_figures:FIG2",
    "fig3": "reports.tables.generation_figures:FIG3",
    "table4": "reports.tables.ablations:TABLE4",
    "table5": "reports.tables.ablations:TABLE5",
    "fig4": "reports.tables.ablations:FIG4",
    # the paper's appendix (`appendix:`): Tables 1 and 3 at other budgets, Figure 2 on other shapes
    "table6": "reports.tables.table1:TABLE6",
    "table7": "reports.tables.table3:TABLE7",
    "table8": "reports.tables.table3:TABLE8",
    "fig5": "reports.tables.generation_figures:FIG5",
    "fig6": "reports.tables.generation_figures:FIG6",
    "fig7": "reports.tables.generation_figures:FIG7",
    "table_pkt": "reports.tables.table_pkt:TABLE_PKT",
    "table_efficiency": "reports.tables.efficiency:TABLE_EFFICIENCY",
    "fig_efficiency": "reports.tables.efficiency:FIG_EFFICIENCY",
    "signal": "reports.tables.signal:SIGNAL",
    "knowledge_map": "reports.tables.knowledge_map:KNOWLEDGE_MAP",
}


@lru_cache(maxsize=1)
def report_table() -> dict[str, str]:
    return with_entry_points("report", REPORTS, entry_points(group=ENTRY_POINT_GROUP))


def report_names() -> list[str]:
    return list(report_table())


def load_report(name: str) -> "Report":
    from reports.plugin import Report

    table = report_table()
    if name not in table:
        raise HarnessError(unknown_name_message("report", name, list(table)))
    report = load_target("report", name, table[name])
    if not isinstance(report, Report) or report.name != name:
        raise HarnessError(f"report {name!r}: {table[name]} is not a Report named {name!r}")
    return report


def enabled_reports(grid: "Grid") -> list["Report"]:
    """The reports the profile asks for, in registry order (`rule all`'s targets)."""
    return [r for r in map(load_report, report_table()) if r.enabled(grid)]
