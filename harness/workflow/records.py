"""Evaluation records as the reports read them: a number reaches a table only from a record that
is well formed and is the one its path names.

Every evaluation JSON is checked on read, and anything else stops the report in one line that
names the file:

- its form: a JSON object with its identifying fields, an integer seed, a finite `value` in
  [0, 100], and, where it keeps per-item results, items with unique keys and finite scores in
  [0, 100] whose mean is its `value` (a table and its paired differences then read the same data);
- its place: the method, source, shape, seed, budget, task and stage its path names
  (`harness.workflow.grid.PATHS`) are the ones it records, so a record copied over another's path, or
  one a job wrote for another task, cannot fill the other's cell.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.workflow.grid import PATHS, SOURCE_BASE, SOURCE_SFT

REQUIRED = ("method", "source", "shape_name", "seed", "task", "value")
# the evaluation files a report reads, by their PATHS name, and the stage each holds
STAGES = {"eval": "sft", "eval_zeroshot": "zeroshot", "eval_paraphrase": "paraphrase", "init_eval": "untrained",
          "source_eval": None}
TOLERANCE = 1e-6  # points: `value` against its items' mean (both computed from the same floats)


@lru_cache(maxsize=None)
def _pattern(name: str) -> re.Pattern:
    """PATHS[name] as a regular expression over a path's tail: each wildcard one path component."""
    parts = re.split(r"(\{\w+\})", PATHS[name])
    body = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(r"(?:^|/)results/(?P<profile>[^/]+)/" + body + "$")


def place(path: str | Path) -> tuple[str, dict[str, str]] | None:
    """(the PATHS name, its wildcards and profile) an evaluation file's path matches, or None."""
    text = Path(path).as_posix()
    for name in STAGES:
        m = _pattern(name).search(text)
        if m:
            return name, m.groupdict()
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_form(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise HarnessError(f"evaluation result {where} holds a JSON {type(record).__name__}, not an object")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise HarnessError(f"evaluation result {where} lacks {', '.join(missing)}")
    for key in ("method", "source", "shape_name", "task"):
        if not isinstance(record[key], str):
            raise HarnessError(f"evaluation result {where}: `{key}` is {record[key]!r}, not a string")
    if not isinstance(record["seed"], int) or isinstance(record["seed"], bool) or record["seed"] < 0:
        raise HarnessError(f"evaluation result {where}: `seed` is {record['seed']!r}, not a non-negative integer")
    value = record["value"]
    if not _number(value) or not 0 <= value <= 100:
        raise HarnessError(f"evaluation result {where}: `value` is {value!r}, not a number in [0, 100]")
    items = record.get("items")
    if items is None:
        return
    if not isinstance(items, list) or not items:
        raise HarnessError(f"evaluation result {where}: `items` is not a non-empty list")
    keys = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise HarnessError(f"evaluation result {where}: item {i} has no string `key`")
        score = item.get("score")
        if not _number(score) or not 0 <= score <= 100:
            raise HarnessError(f"evaluation result {where}: item {i} ({item['key']}) has score {score!r}, "
                               "not a number in [0, 100]")
        if item["key"] in keys:
            raise HarnessError(f"evaluation result {where}: item key {item['key']!r} appears twice")
        keys.add(item["key"])
    mean = math.fsum(item["score"] for item in items) / len(items)
    if abs(mean - value) > TOLERANCE * max(1.0, abs(value)):
        raise HarnessError(f"evaluation result {where}: `value` {value!r} is not its {len(items)} items' mean "
                           f"{mean:.6g}")


def check_place(record: dict, where: str, profile: str | None = None) -> None:
    """The record is the one its path names (a path no evaluation template matches is not checked:
    a report run by hand on files elsewhere)."""
    found = place(where)
    if found is None:
        return
    name, wild = found
    if profile is not None and wild["profile"] != profile:
        raise HarnessError(f"evaluation result {where} belongs to profile {wild['profile']!r}, not {profile!r}")
    if name == "source_eval":
        expected = {"method": SOURCE_BASE if wild["variant"] == "base" else SOURCE_SFT, "source": wild["source"],
                    "task": wild["task"]}
    else:
        expected = {"method": wild["method"], "source": wild["source"], "shape_name": wild["shape"],
                    "seed": int(wild["seed"]), "task": wild["task"], "stage": STAGES[name]}
        if "budget" in wild:
            expected["budget_name"] = wild["budget"]
    got = {**record, "stage": record.get("stage", "sft")}
    wrong = [k for k, v in expected.items() if got.get(k) != v]
    if wrong:
        k = wrong[0]
        raise HarnessError(f"evaluation result {where} records {k} {got.get(k)!r} but its path names {expected[k]!r} "
                           "(a record copied or written for another student, task or stage?)")


def load_results(paths: list[Path], profile: str | None = None) -> list[dict]:
    """The evaluation records of `paths`, each checked in form and in place (`profile`: the
    report's, when known)."""
    results = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark is not an error
        except (OSError, UnicodeDecodeError) as e:
            raise HarnessError(f"cannot read evaluation result {path}: {e}") from None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise HarnessError(f"evaluation result {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
        check_form(record, str(path))
        check_place(record, str(path), profile)
        record["_path"] = str(path)  # named by the pairing's errors
        results.append(record)
    if not results:
        raise HarnessError("no evaluation results to report")
    return results
