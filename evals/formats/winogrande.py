"""WinoGrande's released `dev.jsonl` (a sentence with a `_` blank, option1, option2, answer).

It differs from lm-eval by default: lm-eval scores the text after the blank given a context
that differs per option ("partial" scoring), which a shared-query record cannot hold; here the
query is the sentence up to the blank and each choice is the option plus the rest of the
sentence (the "full" scoring of Brown et al. 2020, same task, slightly easier). The record keeps
the rest of the sentence as `continuation`, so `eval.task_scoring: {winogrande: partial}`
scores it lm-eval's way (evals/multiple_choice.py)."""

from pathlib import Path

from harness.errors import HarnessError
from harness.io import read_jsonl


def read(path: Path) -> list[dict]:
    out = []
    for r in read_jsonl(path, "WinoGrande file"):
        before, blank, after = r["sentence"].partition("_")
        if not blank:
            raise HarnessError(f"WinoGrande: sentence without a blank in {path}: {r['sentence'][:60]!r}")
        # query + TARGET_DELIMITER (a space) + choice is the filled-in sentence; `continuation`,
        # the text after the blank, is what lm-eval's partial scoring scores (eval.task_scoring)
        out.append({"query": before.rstrip(), "choices": [f"{r['option1']}{after}", f"{r['option2']}{after}"],
                    "gold": int(r["answer"]) - 1, "continuation": after})
    return out
