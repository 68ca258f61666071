"""Multiple-choice benchmarks read from their released files into `{query, choices, gold}`
records, with lm-eval's prompts (its task YAMLs at lm-eval 0.4), so a profile can run the
real tasks from local files when the hub is out of reach (`kind: file` in `tasks:`).

| format     | files                                  | prompt (lm-eval task)                                        |
|------------|----------------------------------------|--------------------------------------------------------------|
| boolq      | `dev.jsonl` (question, passage, answer)| "{passage}\\nQuestion: {question}?\\nAnswer:" -> no / yes      |
| piqa       | `valid.jsonl` + `valid-labels.lst`     | "Question: {goal}\\nAnswer:" -> sol1 / sol2                    |
| winogrande | `dev.jsonl` (sentence with `_`)        | see `winogrande` below                                       |
| medmcqa    | `validation.jsonl` (question, choices) | "Question: ...\\nChoices:\\nA. ...\\nAnswer:" -> A / B / C / D   |
| hellaswag  | `hellaswag_val.jsonl` (activity_label, ctx_a, ctx_b or ctx, endings, label) | lm-eval's `hellaswag` |
| casehold   | LexGLUE (context, endings, label) or the instruction release (input_text, choices, answer) | ours: `evals/lm_eval_tasks/casehold.yaml` |

Every file may be plain or .gz/.bz2/.xz-compressed JSON lines, or one JSON array.

WinoGrande differs from lm-eval by default: lm-eval scores the text after the blank given
a context that differs per option ("partial" scoring), which a shared-query record cannot hold;
here the query is the sentence up to the blank and each choice is the option plus the rest of
the sentence (the "full" scoring of Brown et al. 2020, same task, slightly easier). The record
keeps the rest of the sentence as `continuation`, so `eval.task_scoring: {winogrande: partial}`
scores it lm-eval's way (evals/multiple_choice.py).
"""

from __future__ import annotations

import re
import sys
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
        # query + TARGET_DELIMITER (a space) + choice is the filled-in sentence; `continuation`,
        # the text after the blank, is what lm-eval's partial scoring scores (eval.task_scoring)
        out.append({"query": before.rstrip(), "choices": [f"{r['option1']}{after}", f"{r['option2']}{after}"],
                    "gold": int(r["answer"]) - 1, "continuation": after})
    return out


def medmcqa(path: Path) -> list[dict]:
    out = []
    for r in read_jsonl(path, "MedMCQA file"):
        letters = [c.split(".", 1)[0] for c in r["choices"]]
        out.append({"query": f"Question: {r['question']}\nChoices:\n" + "\n".join(r["choices"]) + "\nAnswer:",
                    "choices": letters, "gold": int(r["answer"])})
    return out


def _hellaswag_text(text: str) -> str:
    """lm-eval's `hellaswag` preprocessing: WikiHow's bracketed markers out, double spaces single."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def hellaswag(path: Path) -> list[dict]:
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
        out.append({"query": _hellaswag_text(f"{r['activity_label']}: {ctx}"),
                    "choices": [_hellaswag_text(e) for e in r["endings"]],
                    "gold": _gold(r["label"], f"{path} record {i}")})
    if ctx_only:
        print(f"notice: {path}: {ctx_only} of {len(out)} HellaSwag records carry `ctx` without ctx_a/ctx_b; their "
              f"queries differ from lm-eval's in the case of ctx_b (lm-eval capitalises it)", file=sys.stderr)
    return out


HOLDING = "<HOLDING>"


def casehold_query(passage: str) -> str:
    """The citing passage up to the masked holding: "... 123 F.3d 456 (2d Cir. 1999) (" """
    return passage.split(HOLDING, 1)[0].rstrip()


def casehold(path: Path) -> list[dict]:
    """CaseHOLD as our lm-eval YAML renders it (the citing passage up to the masked holding, each
    holding a choice), from LexGLUE's fields or from the instruction release's."""
    out = []
    for i, r in enumerate(read_jsonl(path, "CaseHOLD file"), 1):
        passage, choices, label = ((r["context"], r["endings"], r["label"]) if "context" in r
                                   else (r["input_text"], r["choices"], r["answer"]))
        out.append({"query": casehold_query(passage), "choices": list(choices),
                    "gold": _gold(label, f"{path} record {i}")})
    return out


def answer_index(label) -> int:
    """A label as an index: an int, a digit string ("2", HellaSwag's), or a letter ("C");
    ValueError otherwise."""
    if isinstance(label, str) and len(label.strip()) == 1 and label.strip().isalpha():
        return ord(label.strip().upper()) - ord("A")
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise ValueError(label)
    return int(label)


def _gold(label, where: str) -> int:
    try:
        return answer_index(label)
    except ValueError:
        raise HarnessError(f"{where}: label {label!r} is not an answer index or letter (an unlabelled test "
                           f"split? only labelled splits can be scored)") from None


FORMATS = {"boolq": boolq, "piqa": piqa, "winogrande": winogrande, "medmcqa": medmcqa, "hellaswag": hellaswag,
           "casehold": casehold}


def load_benchmark(path: str | Path, fmt: str) -> list[dict]:
    """The `{query, choices, gold}` records of a released file in format `fmt`, every one checked."""
    from harness.tasks import multiple_choice_problem

    if fmt not in FORMATS:
        raise HarnessError(f"unknown multiple-choice file format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing task file {path}")
    try:
        records = FORMATS[fmt](path)
    except KeyError as e:
        raise HarnessError(f"{path}: a record lacks the field {e.args[0]!r} that format {fmt!r} reads; is "
                           f"`format` right? known: {', '.join(FORMATS)}") from None
    for i, record in enumerate(records, 1):
        problem = multiple_choice_problem(record)
        if problem:
            raise HarnessError(f"{path} record {i} (format {fmt!r}): {problem}")
    return records
