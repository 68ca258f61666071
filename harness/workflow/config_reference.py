"""docs/config.md, generated from the schema's descriptions (config/schema.yaml and each report
section's, harness.workflow.report.Section) with the default profile's values beside them:
`python -m harness config-reference --out docs/config.md`. A test checks the file is current
and that every key of every shipped profile is in it."""

from __future__ import annotations

import json
from typing import Any, Iterator

from harness.workflow.config import CONFIG_DIR, DEFAULT_PROFILE, full_schema
from harness.io import read_yaml

NAME, ITEM = "<name>", "[]"  # a path step through a mapping's values, a list's items
HEAD = """# Configuration reference

Every key a profile may set, generated from the schema's descriptions (`config/schema.yaml`,
and each report's own section in `reports/tables/`) by `python -m harness config-reference
--out docs/config.md`; `tests/workflow/test_config_reference.py` keeps this file current. The default
column is `config/micro.yaml`, the complete default every other profile is a diff of; `–`: not
set there (the code's default, where the description names one, applies). `<name>` stands for
any name you choose (a shape, a source, a task), `[]` for each item of a list.

"""


def _resolve(node: dict, defs: dict) -> dict:
    """A `$ref` to `$defs` resolved; the referring node's own description wins."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        return {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _kind(node: dict) -> str:
    if "enum" in node:
        return " | ".join(map(str, node["enum"]))
    if "oneOf" in node:
        return " or ".join(filter(None, (_kind(n) for n in node["oneOf"]))) or "—"
    kind = node.get("type", "")
    return " or ".join(kind) if isinstance(kind, list) else kind


def keys(schema: dict) -> Iterator[tuple[str, dict]]:
    """(dotted path, resolved node) of every key the schema describes, depth first."""
    defs = schema.get("$defs", {})

    def walk(node: dict, path: str) -> Iterator[tuple[str, dict]]:
        node = _resolve(node, defs)
        for key, child in node.get("properties", {}).items():
            child = _resolve(child, defs)
            yield f"{path}{key}", child
            yield from walk(child, f"{path}{key}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and _resolve(extra, defs).get("properties"):
            yield from walk(extra, f"{path}{NAME}.")
        items = node.get("items")
        if isinstance(items, dict) and _resolve(items, defs).get("properties"):
            yield from walk(items, f"{path}{ITEM}.")

    yield from walk(schema, "")


def _default(config: Any, path: str) -> str:
    for step in path.split("."):
        if step in (NAME, ITEM) or not isinstance(config, dict) or step not in config:
            return "–"
        config = config[step]
    text = json.dumps(config, ensure_ascii=False)
    return f"`{text}`" if len(text) <= 40 else "(see config/micro.yaml)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(path: str, node: dict, default: Any) -> str:
    return (f"| `{path}` | {_cell(_kind(node))} | {_cell(_default(default, path))} | "
            f"{_cell(node.get('description', ''))} |\n")


TABLE = "| key | allowed | default | meaning |\n|---|---|---|---|\n"


def reference() -> str:
    """The Markdown reference: every top-level key in one table, then a table per section."""
    default = read_yaml(CONFIG_DIR / f"{DEFAULT_PROFILE}.yaml")
    every = list(keys(full_schema()))
    top = [(path, node) for path, node in every if "." not in path]
    out = [HEAD, "## Top level\n\n", TABLE, *(_row(path, node, default) for path, node in top)]
    for section, node in top:
        nested = [(path, n) for path, n in every if path.startswith(section + ".")]
        if nested:
            out += [f"\n## `{section}`\n\n{_cell(node.get('description', ''))}\n\n", TABLE,
                    *(_row(path, n, default) for path, n in nested)]
    return "".join(out)
