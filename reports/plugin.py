"""What a report (a table or a figure) is: a declaration the workflow plans from and the
renderer it runs. One file under `reports/tables/` declares a report (or a few that share their
inputs); `reports/registry.py` names it. Adding a table is that file, its line in the registry,
and its config section.

A report declares when the config asks for it (`enabled`), the files it renders from
(`inputs`: evaluation JSON, or the directories whose training logs its config names), further
files it needs but does not read through its arguments (`needs`), and its renderer's config
slice (`cfg`, JSON). `renderer` is "module:function", imported only when the report renders:

  kind "table":      function(cfg, results) -> markdown        (results: the evaluation records)
  kind "figure":     function(cfg, results, out) -> None
  kind "log-table":  function(cfg) -> markdown                 (reads the logs its cfg names)
  kind "log-figure": function(cfg, out) -> None
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.grid import Grid

KINDS = ("table", "figure", "log-table", "log-figure")


def _nothing(grid: "Grid") -> list[str]:
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

    def render(self, cfg: dict, inputs: list[Path], out: Path) -> None:
        from harness.io import atomic_write_text
        from reports.records import load_results

        module, _, function = self.renderer.partition(":")
        draw = getattr(importlib.import_module(module), function)
        if self.kind == "table":
            atomic_write_text(out, draw(cfg, load_results(inputs, cfg.get("profile"))))
        elif self.kind == "figure":
            draw(cfg, load_results(inputs, cfg.get("profile")), out)
        elif self.kind == "log-table":
            atomic_write_text(out, draw(cfg))
        else:
            draw(cfg, out)
