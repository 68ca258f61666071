"""BoolQ's released `dev.jsonl` (question, passage, answer) with lm-eval's `boolq` prompt:
"{passage}\nQuestion: {question}?\nAnswer:" -> no / yes."""

from pathlib import Path

from harness.io import read_jsonl


def read(path: Path) -> list[dict]:
    return [{"query": f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", "choices": ["no", "yes"],
             "gold": int(bool(r["answer"]))} for r in read_jsonl(path, "BoolQ file")]
