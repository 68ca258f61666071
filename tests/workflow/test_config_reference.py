"""docs/config.md: generated from the schema's descriptions, current, and covering every key."""

from pathlib import Path

import pytest

from harness.workflow.config import full_schema, load_profile
from harness.workflow.config_reference import ITEM, NAME, _resolve, keys, reference

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_of_the_schema_has_a_description():
    missing = [path for path, node in keys(full_schema()) if not node.get("description")]
    assert not missing, f"keys without a description: {missing}"


def test_docs_config_md_is_the_generated_reference():
    assert (ROOT / "docs" / "config.md").read_text() == reference(), (
        "docs/config.md is stale: python -m harness config-reference --out docs/config.md")


def _paths(value, node, defs, path=""):
    """The reference's key paths of every key `value` sets, walking the schema beside it."""
    node = _resolve(node, defs)
    if isinstance(value, dict) and "properties" in node:
        for key, child in value.items():
            yield f"{path}{key}"
            yield from _paths(child, node["properties"][key], defs, f"{path}{key}.")
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for child in value.values():
            yield from _paths(child, node["additionalProperties"], defs, f"{path}{NAME}.")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for child in value:
            yield from _paths(child, node["items"], defs, f"{path}{ITEM}.")


@pytest.mark.parametrize("profile", [["smoke"], ["micro"], ["micro-real"], ["paper"], ["paper", "paper-toy"]])
def test_every_key_a_shipped_profile_sets_is_in_the_reference(profile):
    schema = full_schema()
    documented = {path for path, _ in keys(schema)}
    used = set(_paths(load_profile(*profile), schema, schema["$defs"]))
    assert used and used <= documented, sorted(used - documented)
