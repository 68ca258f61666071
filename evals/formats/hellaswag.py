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


def _case_may_differ(ctx: str) -> bool:
    """Whether `ctx_b.capitalize()` can change a `ctx` whose split is unknown: ctx_b is some tail
    after a space, and only a cased letter there can change (its first up, the rest down)."""
    return any(c.lower() != c.upper() for c in ctx.partition(" ")[2])


def read(path: Path) -> list[dict]:
    """lm-eval's query, `activity_label: ctx_a + " " + ctx_b.capitalize()`, exactly where the record
    has the ctx_a/ctx_b split. Re-distributions that keep only `ctx` (= ctx_a + " " + ctx_b) give
    the same query but for the case of ctx_b's letters, which `capitalize()` changes and `ctx`
    cannot tell apart; the records whose query may differ so are counted in a notice."""
    out, may_differ = [], 0
    for i, r in enumerate(read_jsonl(path, "HellaSwag file"), 1):
        if "ctx_a" in r and "ctx_b" in r:
            ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
        else:
            ctx = r["ctx"]
            may_differ += _case_may_differ(ctx)
        out.append({"query": _text(f"{r['activity_label']}: {ctx}"), "choices": [_text(e) for e in r["endings"]],
                    "gold": gold(r["label"], f"{path} record {i}")})
    if may_differ:
        print(f"notice: {path}: {may_differ} of {len(out)} HellaSwag records carry `ctx` without ctx_a/ctx_b, and "
              f"their queries may differ from lm-eval's in the case of ctx_b (lm-eval capitalises it)", file=sys.stderr)
    return out
