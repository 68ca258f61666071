"""MedMCQA's `validation.jsonl` (question, choices "A. ...", answer), with lm-eval's prompt:
"Question: ...\nChoices:\nA. ...\nAnswer:" -> A / B / C / D."""

from pathlib import Path

from harness.io import read_jsonl


def read(path: Path) -> list[dict]:
    out = []
    for r in read_jsonl(path, "MedMCQA file"):
        letters = [c.split(".", 1)[0] for c in r["choices"]]
        out.append({"query": f"Question: {r['question']}\nChoices:\n" + "\n".join(r["choices"]) + "\nAnswer:",
                    "choices": letters, "gold": int(r["answer"])})
    return out
