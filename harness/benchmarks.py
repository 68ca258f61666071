"""Multiple-choice benchmarks read from their released files into `{query, choices, gold}`
records, with lm-eval's prompts (its task YAMLs at lm-eval 0.4), so a profile can run the
real tasks from local files when the hub is out of reach (`kind: file` in `tasks:`).

| format     | files                                  | prompt (lm-eval task)                                        |
|------------|----------------------------------------|--------------------------------------------------------------|
| boolq      | `dev.jsonl` (question, passage, answer)| "{passage}\\nQuestion: {question}?\\nAnswer:" -> no / yes      |
| piqa       | `valid.jsonl` + `valid-labels.lst`     | "Question: {goal}\\nAnswer:" -> sol1 / sol2                    |
| winogrande | `dev.jsonl` (sentence with `_`)        | see `winogrande` below                                       |
| medmcqa    | `validation.jsonl` (question, choices) | "Question: ...\\nChoices:\\nA. ...\\nAnswer:" -> A / B / C / D   |

WinoGrande differs from lm-eval on purpose: lm-eval scores the text after the blank given
a context that differs per option, which a shared-query record cannot hold; here the query is
the sentence up to the blank and each choice is the option plus the rest of the sentence
(the "full" scoring of Brown et al. 2020, same task, slightly easier).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.io import read_jsonl


def boolq(path: Path) -> list[dict]:
    return [{"query": f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", "choices": ["no", "yes"],
             "gold": int(bool(r["answer"]))} for r in read_jsonl(path, "BoolQ file")]


def piqa(path: Path) -> list[dict]:
    labels_path = path.with_name(path.stem + "-labels.lst")
    if not labels_path.is_file():
        raise HarnessError(f"PIQA: no label file {labels_path} beside {path}")
    labels = [int(l) for l in labels_path.read_text().split()]
    records = read_jsonl(path, "PIQA file")
    if len(labels) != len(records):
        raise HarnessError(f"PIQA: {len(records)} records in {path} but {len(labels)} labels in {labels_path}")
    return [{"query": f"Question: {r['goal']}\nAnswer:", "choices": [r["sol1"], r["sol2"]], "gold": label}
            for r, label in zip(records, labels)]


def winogrande(path: Path) -> list[dict]:
    out = []
    for r in read_jsonl(path, "WinoGrande file"):
        before, blank, after = r["sentence"].partition("_")
        if not blank:
            raise HarnessError(f"WinoGrande: sentence without a blank in {path}: {r['sentence'][:60]!r}")
        # query + TARGET_DELIMITER (a space) + choice is the filled-in sentence
        out.append({"query": before.rstrip(), "choices": [f"{r['option1']}{after}", f"{r['option2']}{after}"],
                    "gold": int(r["answer"]) - 1})
    return out


def medmcqa(path: Path) -> list[dict]:
    out = []
    for r in read_jsonl(path, "MedMCQA file"):
        letters = [c.split(".", 1)[0] for c in r["choices"]]
        out.append({"query": f"Question: {r['question']}\nChoices:\n" + "\n".join(r["choices"]) + "\nAnswer:",
                    "choices": letters, "gold": int(r["answer"])})
    return out


FORMATS = {"boolq": boolq, "piqa": piqa, "winogrande": winogrande, "medmcqa": medmcqa}


def load_benchmark(path: str | Path, fmt: str) -> list[dict]:
    if fmt not in FORMATS:
        raise HarnessError(f"unknown multiple-choice file format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing task file {path}")
    return FORMATS[fmt](path)
