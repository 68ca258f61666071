"""What every registry shares (methods, architectures, reports): a table of names to
"module:attribute" strings, extended by other packages' entry points, loaded lazily, and
unknown names refused in one line with the closest known name."""

from __future__ import annotations

import difflib
import importlib
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
