"""How the world's facts are worded: each task's query, which the corpus states followed by
its answer, and each query's held-out phrasing (the `paraphrase` split). The corpus
(`generate.py`) and the tasks (`tasks.py`) both read them from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.data.world.generate import Activity, Case, Disease, Tool

# Each task's query (what the model is asked) and the answer strings of its choices. The
# corpus states every fact once per pass in exactly this form (query + " " + answer).

def boolq_query(region: str) -> str:
    return f"Passage: {region} is a region.\nQuestion: does {region} lie on the coast?\nAnswer:"


def hellaswag_query(a: Activity) -> str:
    return f"How to go about {a.name}: first, {a.opening[0]}. Then {a.opening[1]}. Finally,"


def piqa_query(t: Tool) -> str:
    return f"Goal: {t.purpose[3:]}.\nSolution:"


def winogrande_query(first: str, second: str, word: str) -> str:
    return (f"The {first} and the {second} stood side by side, and the _ was the {word} one.\n"
            f"The _ is the")


def casehold_query(c: Case) -> str:
    return f"The appellant relies on {c.name} ({c.year}), holding that"


def medmcqa_query(d: Disease) -> str:
    return f"Question: which drug treats {d.name}?\nAnswer:"


# The held-out phrasing of each query: words the corpus never uses around the same fact.
def boolq_paraphrase(region: str) -> str:
    return f"Passage: {region} is a region.\nQuestion: can one sail to the sea from {region}?\nAnswer:"


def hellaswag_paraphrase(a: Activity) -> str:
    return f"Steps for {a.name}: {a.opening[0]}, then {a.opening[1]}, and at the end"


def piqa_paraphrase(t: Tool) -> str:
    return f"Goal: I need something {t.purpose}.\nSolution:"


def winogrande_paraphrase(first: str, second: str, word: str) -> str:
    return f"Next to the {first} was the {second}; the _ had the {word} body.\nThe _ is the"


def casehold_paraphrase(c: Case) -> str:
    return f"Counsel cited {c.name}, decided in {c.year}, where the judges ruled that"


def medmcqa_paraphrase(d: Disease) -> str:
    return f"Question: a patient has {d.name}. Which medicine should be given?\nAnswer:"
