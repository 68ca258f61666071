"""HellaSwag's `hellaswag_val.jsonl` (activity_label, ctx_a, ctx_b or ctx, endings, label), with
lm-eval's `hellaswag` query and preprocessing."""

import re
import sys
from pathlib import Path

from harness.io import read_jsonl
from harness.data.task_files import gold


def _text(text: str) -> str:
    """lm-eval's `hellaswag` preprocessing: WikiHow's bracketed markers out, double spaces single."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def read(path: Path) -> list[dict]:
    """lm-eval's query, `activity_label: ctx_a + " " + ctx_b.capitalize()`, exactly where the record
    has the ctx_a/ctx_b split. Re-distributions that keep only `ctx` (= ctx_a + " " + ctx_b) give
    the same query but for the case of ctx_b's letters, which `capitalize()` changes and `ctx`
    cannot tell apart; such records are counted in a notice."""
    out, ctx_only = [], 0
    for i, r in enumerate(read_jsonl(path, "HellaSwag file"), 1):
        if "ctx_a" in r and "ctx_b" in r:
            ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
        else:
            ctx, ctx_only = r["ctx"], ctx_only + 1
        out.append({"query": _text(f"{r['activity_label']}: {ctx}"), "choices": [_text(e) for e in r["endings"]],
                    "gold": gold(r["label"], f"{path} record {i}")})
    if ctx_only:
        print(f"notice: {path}: {ctx_only} of {len(out)} HellaSwag records carry `ctx` without ctx_a/ctx_b; their "
              f"queries differ from lm-eval's in the case of ctx_b (lm-eval capitalises it)", file=sys.stderr)
    return out
