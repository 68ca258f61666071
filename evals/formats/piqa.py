"""PIQA's released `valid.jsonl` and its `valid-labels.lst` beside it, with lm-eval's `piqa`
prompt: "Question: {goal}\nAnswer:" -> sol1 / sol2."""

from pathlib import Path

from harness.errors import HarnessError
from harness.io import read_jsonl


def read(path: Path) -> list[dict]:
    labels_path = path.with_name(path.stem + "-labels.lst")
    if not labels_path.is_file():
        raise HarnessError(f"PIQA: no label file {labels_path} beside {path}")
    labels = [int(l) for l in labels_path.read_text().split()]
    records = read_jsonl(path, "PIQA file")
    if len(labels) != len(records):
        raise HarnessError(f"PIQA: {len(records)} records in {path} but {len(labels)} labels in {labels_path}")
    return [{"query": f"Question: {r['goal']}\nAnswer:", "choices": [r["sol1"], r["sol2"]], "gold": label}
            for r, label in zip(records, labels)]
