"""What a report (a table or a figure) is, and the registry that finds them.

One file under `reports/tables/` holds a report (or a family sharing its inputs, as Tables 1
and 6): its declaration, the rows it runs beyond `methods:`, its config section's schema and
checks, and its renderer. Adding a table is that file and its config section; the registry
finds every `Report` the modules of `reports/tables/` declare, and packages outside this
repository add theirs through the `harness.reports` entry-point group ("module:ATTRIBUTE").

A report declares when the config asks for it (`enabled`), the files it renders from
(`inputs`: evaluation JSON, or the directories whose training logs its config names), further
files it needs but does not read through its arguments (`needs`), and its renderer's config
slice (`cfg`, JSON). `renderer` is "module:function", imported only when the report renders:

  kind "table":      function(cfg, results) -> markdown        (results: the evaluation records)
  kind "figure":     function(cfg, results, out) -> None
  kind "log-table":  function(cfg) -> markdown                 (reads the logs its cfg names)
  kind "log-figure": function(cfg, out) -> None

A `Section` is the config section a report file owns (`pkt:`, `signal:` ...): its JSON-schema
fragment (merged into config/schema.yaml's at validation), its checks against the rest of the
config, and the rows it runs that are not `methods:` rows (planned like any other student).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness.errors import HarnessError
from harness.api.plugins import Registry, module_names

if TYPE_CHECKING:
    from harness.workflow.grid import Grid, Row

KINDS = ("table", "figure", "log-table", "log-figure")
PACKAGE = "reports.tables"


def _nothing(_) -> list:
    return []


@dataclass(frozen=True)
class Report:
    name: str
    output: str  # e.g. "reports/table1.md"
    category: str  # its group on `snakemake --report`'s page
    kind: str
    renderer: str  # "module:function"
    enabled: Callable[["Grid"], bool]
    inputs: Callable[["Grid"], list[str]]
    cfg: Callable[["Grid"], str]
    needs: Callable[["Grid"], list[str]] = _nothing

    def __post_init__(self):
        if self.kind not in KINDS:
            raise HarnessError(f"report {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def page(self) -> str | None:
        """A table's HTML page beside its Markdown: what `snakemake --report` shows inline (it shows
        images and HTML, and offers other files as downloads)."""
        return self.output.removesuffix(".md") + ".html" if self.kind in ("table", "log-table") else None

    def render(self, cfg: dict, inputs: list[Path], out: Path) -> None:
        from harness.io import atomic_write_text
        from harness.workflow.records import load_results

        module, _, function = self.renderer.partition(":")
        draw = getattr(importlib.import_module(module), function)
        if self.kind in ("table", "log-table"):
            text = draw(cfg, load_results(inputs, cfg.get("profile"))) if self.kind == "table" else draw(cfg)
            atomic_write_text(out, text)
            atomic_write_text(out.with_suffix(".html"), html_page(text, self.name))
        elif self.kind == "figure":
            draw(cfg, load_results(inputs, cfg.get("profile")), out)
        else:
            draw(cfg, out)


PAGE_STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em;max-width:80em}"
              "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em;"
              "text-align:right}td:first-child,td:nth-child(2),th{text-align:left}code{background:#f4f4f4}")


def html_page(markdown_text: str, title: str) -> str:
    """A Markdown report as one self-contained HTML page (its tables as HTML tables)."""
    import html

    import markdown

    md = markdown.Markdown(extensions=["tables"])
    # raw HTML in a label or a note is shown as text, never run as markup in the report page
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    body = md.convert(markdown_text)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{PAGE_STYLE}</style></head><body>\n{body}\n</body></html>\n")


@dataclass(frozen=True)
class Section:
    """The config section `key` a report file owns. `schema` is its value's JSON Schema in YAML
    (it may use config/schema.yaml's `$defs`); `check(config)` raises HarnessError ("config
    error: ...") for what a schema cannot say (a name another section must define); `rows(config)`
    are the rows it runs beyond `methods:`, when the section is present."""

    key: str
    schema_yaml: str
    check: Callable[[dict], None] = _nothing
    rows: Callable[[dict], list["Row"]] = _nothing

    @cached_property
    def schema(self) -> dict[str, Any]:
        from harness.io import load_yaml

        return load_yaml(self.schema_yaml)


def _declared() -> dict[str, str]:
    """{report name: "module:ATTRIBUTE"} of every `Report` a module of reports/tables/ declares."""
    found: dict[str, str] = {}
    for module_name in (f"{PACKAGE}.{name}" for name in module_names(PACKAGE)):
        module = importlib.import_module(module_name)
        for attribute, value in vars(module).items():
            if isinstance(value, Report):
                if value.name in found:
                    raise HarnessError(f"report {value.name!r} is declared twice ({found[value.name]}, "
                                       f"{module_name}:{attribute})")
                found[value.name] = f"{module_name}:{attribute}"
    return found


REPORTS = Registry("report", "harness.reports", _declared)


def load_report(name: str) -> Report:
    report = REPORTS.load(name)
    if not isinstance(report, Report) or report.name != name:
        raise HarnessError(f"report {name!r}: {REPORTS.entry(name)} is not a Report named {name!r}")
    return report


def report_names() -> list[str]:
    return REPORTS.names()


def enabled_reports(grid: "Grid") -> list[Report]:
    """The reports the profile asks for (`rule all`'s targets)."""
    return [r for r in map(load_report, REPORTS.names()) if r.enabled(grid)]


def all_targets(grid: "Grid") -> list[str]:
    """`rule all`'s inputs: every enabled report but those `all_skips` names (their own targets)."""
    skipped = set(grid.C.get("all_skips", []))  # names checked by harness.workflow.config.validate
    return [r.output for r in enabled_reports(grid) if r.name not in skipped]


def sections() -> dict[str, Section]:
    """{config key: Section} of the modules that declare the registered reports."""
    found: dict[str, Section] = {}
    for module_name in dict.fromkeys(target.partition(":")[0] for target in REPORTS.table().values()):
        for value in vars(importlib.import_module(module_name)).values():
            if isinstance(value, Section):
                if found.get(value.key, value) is not value:
                    raise HarnessError(f"config section {value.key!r} is claimed by two report files")
                found[value.key] = value
    return found


def section_rows(config: dict) -> list["Row"]:
    """The rows every present section runs beyond `methods:`."""
    return [row for key, section in sections().items() if key in config for row in section.rows(config)]


def planned_methods(grid: "Grid") -> set[str]:
    """Every method some table runs (the `{method}` wildcard's values): the `methods:` rows and
    those of the report sections present."""
    return {r.method for r in [*grid.rows, *section_rows(grid.C)]}
