"""CaseHOLD as our lm-eval YAML renders it (evals/lm_eval_tasks/casehold.yaml): the citing
passage up to the masked holding, each holding a choice; from LexGLUE's fields (context,
endings, label) or from the instruction release's (input_text, choices, answer)."""

from pathlib import Path

from harness.io import read_jsonl
from harness.data.task_files import gold

HOLDING = "<HOLDING>"


def query(passage: str) -> str:
    """The citing passage up to the masked holding: "... 123 F.3d 456 (2d Cir. 1999) (" """
    return passage.split(HOLDING, 1)[0].rstrip()


def read(path: Path) -> list[dict]:
    out = []
    for i, r in enumerate(read_jsonl(path, "CaseHOLD file"), 1):
        passage, choices, label = ((r["context"], r["endings"], r["label"]) if "context" in r
                                   else (r["input_text"], r["choices"], r["answer"]))
        choices = list(choices)
        if isinstance(label, str) and label in choices:  # the instruction release answers with the holding's text
            label = choices.index(label)
        out.append({"query": query(passage), "choices": choices, "gold": gold(label, f"{path} record {i}")})
    return out
