"""Prompt functions of casehold.yaml (lm-eval resolves `!function casehold.<name>` here).

Two releases of CaseHOLD are read: LexGLUE's (`context`, `endings`, `label`) and the zero-shot
instruction release (`input_text`, `choices`, `answer`, the answer an index or a letter).
`evals/formats/casehold.py` reads the same files without lm-eval, through the same helpers.
"""

from evals.formats.casehold import query as casehold_query
from harness.data.task_files import answer_index


def doc_to_text(doc: dict) -> str:
    return casehold_query(doc["context"] if "context" in doc else doc["input_text"])


def doc_to_choice(doc: dict) -> list[str]:
    return list(doc["endings"] if "endings" in doc else doc["choices"])


def doc_to_target(doc: dict) -> int:
    return answer_index(doc["label"] if "label" in doc else doc["answer"])
