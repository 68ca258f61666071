"""One registry mechanism for every axis that grows: methods, architectures, reports and
multiple-choice file formats. A `Registry` maps names to "module:attribute" strings, from a
built-in table and from other packages' entry points; it loads an entry only when asked,
refuses a name registered twice, and answers an unknown name in one line with the closest
known one.

The built-in table is either written out (methods/registry.py, harness/models/archs/__init__.py) or
found: `modules_in(package)` lists one entry per module of a folder, named by its file, so
that adding a file-format reader is adding its file (evals/formats/)."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

from harness.errors import HarnessError


def did_you_mean(name: str, known) -> str:
    """"; did you mean 'x'?" for the closest of `known`, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, known)} Known: {', '.join(sorted(known))}"


def with_entry_points(kind: str, table: dict[str, Any], found: Iterable,
                      parse: Callable[[str, str], Any] = lambda name, value: value) -> dict[str, Any]:
    """`table` and the entry points `found` (`importlib.metadata.entry_points(group=...)`), each
    parsed from its name and value; a name registered twice is a one-line error."""
    merged = dict(table)
    for ep in found:
        if ep.name in merged:
            raise HarnessError(f"{kind} {ep.name!r} is registered twice (entry point {ep.value})")
        merged[ep.name] = parse(ep.name, ep.value)
    return merged


def load_target(kind: str, name: str, target: str) -> Any:
    """The object `target` ("module:attribute", or a module) names, for the `kind` `name`."""
    module, _, attribute = target.partition(":")
    try:
        loaded = importlib.import_module(module)
        return getattr(loaded, attribute) if attribute else loaded
    except (ImportError, AttributeError) as e:
        raise HarnessError(f"{kind} {name!r}: cannot load {target} ({e})") from None


def module_names(package: str) -> list[str]:
    """The modules in `package`'s folder, in name order, found without importing them (names
    starting with `_` are helpers, not entries)."""
    folder = importlib.util.find_spec(package).submodule_search_locations
    return sorted(m.name for m in pkgutil.iter_modules(folder) if not m.name.startswith("_"))


def modules_in(package: str, attribute: str) -> dict[str, str]:
    """{module: "package.module:attribute"} of every module in `package`'s folder."""
    return {name: f"{package}.{name}:{attribute}" for name in module_names(package)}


class Registry:
    """Names of one `kind` -> entries: `builtin()` (name -> raw entry), and the entry points of
    `group` ("module:attribute"); each raw entry is passed through `parse(name, raw)`."""

    def __init__(self, kind: str, group: str, builtin: Callable[[], dict[str, Any]],
                 parse: Callable[[str, Any], Any] = lambda name, raw: raw):
        self.kind, self.group, self._builtin, self._parse = kind, group, builtin, parse
        self._table: dict[str, Any] | None = None

    def table(self) -> dict[str, Any]:
        if self._table is None:
            own = {name: self._parse(name, raw) for name, raw in self._builtin().items()}
            self._table = with_entry_points(self.kind, own, entry_points(group=self.group), self._parse)
        return self._table

    def clear(self) -> None:
        """Forget the table (a test that adds an entry point, or a module, reads it again)."""
        self._table = None

    def names(self) -> list[str]:
        return list(self.table())

    def __contains__(self, name: str) -> bool:
        return name in self.table()

    def entry(self, name: str) -> Any:
        table = self.table()
        if name not in table:
            raise HarnessError(unknown_name_message(self.kind, name, list(table)))
        return table[name]

    def load(self, name: str) -> Any:
        """The object a plain "module:attribute" entry names."""
        return load_target(self.kind, name, self.entry(name))
