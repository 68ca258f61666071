"""What a test split gives away: the scores of strategies that use no knowledge.

A benchmark of knowledge transfer is only readable if nothing but knowledge
scores above chance (docs/signal.md A1). These are the strategies a model could
learn instead of facts, each scored on a task's test split:

- `position`: always the same position (the best one);
- `train prior`: the choice that is gold most often in the train split;
- `corpus frequency`: the choice the pre-training corpus mentions most;
- `shortest`, `longest`: the shortest / longest choice in characters;
- `query overlap`: the choice sharing the most words with the query.

Ties go to the alphabetically first choice, never to a position, so a strategy
that sees only the choice set scores exactly chance on a balanced block. For
generation tasks, `template` answers each test instruction with the train
response of the same instruction pattern, its entity swapped in: the baseline
Rouge-L rewards, and that a knowledge score must not.
"""

from __future__ import annotations

import re
from collections import Counter


def _accuracy(test: list[dict], pick) -> float:
    return 100.0 * sum(pick(r) == r["choices"][r["gold"]] for r in test) / len(test)


def _best(choices: list[str], key) -> str:
    """The choice with the largest `key`, ties to the alphabetically first."""
    return min(choices, key=lambda c: (-key(c), c))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def multiple_choice(train: list[dict], test: list[dict], corpus: str) -> dict[str, float]:
    """Accuracy (points) of every knowledge-free strategy on `test`."""
    if not test:
        raise ValueError("no test records")
    n = len(test[0]["choices"])
    prior = Counter(r["choices"][r["gold"]] for r in train)
    mentions: dict[str, int] = {}

    def frequency(choice: str) -> int:
        if choice not in mentions:
            mentions[choice] = corpus.count(choice)
        return mentions[choice]

    return {
        "position": max(100.0 * sum(r["gold"] == k for r in test) / len(test) for k in range(n)),
        "train prior": _accuracy(test, lambda r: _best(r["choices"], lambda c: prior[c])),
        "corpus frequency": _accuracy(test, lambda r: _best(r["choices"], frequency)),
        "shortest": _accuracy(test, lambda r: _best(r["choices"], lambda c: -len(c))),
        "longest": _accuracy(test, lambda r: _best(r["choices"], len)),
        "query overlap": _accuracy(test, lambda r: _best(r["choices"],
                                                        lambda c: len(_words(c) & _words(r["query"])))),
    }


def _pattern(record: dict) -> tuple[str, str]:
    key = record["key"]
    return record["instruction"].replace(key, "{}"), record["input"].replace(key, "{}")


def _swap(text: str, old: str, new: str) -> str:
    return text.replace(old, new).replace(old.capitalize(), new.capitalize())


def template_responses(train: list[dict], test: list[dict]) -> list[str]:
    """Each test record answered by a train record of its instruction pattern, entity swapped in
    (records carry the micro world's `key`, the entity they are about)."""
    by_pattern = {}
    for r in train:
        by_pattern.setdefault(_pattern(r), r)
    out = []
    for r in test:
        donor = by_pattern.get(_pattern(r))
        if donor is None:
            out.append("")
            continue
        response = donor["output"][0] if isinstance(donor["output"], list) else donor["output"]  # written as a list
        out.append(_swap(response, donor["key"], r["key"]))
    return out


def generation(train: list[dict], test: list[dict]) -> dict[str, float]:
    """Rouge-L and knowledge score (fact recall) of the template baseline on `test`."""
    from evals.generation import fact_recall
    from evals.rouge import rouge_l

    responses = template_responses(train, test)
    refs = [r["output"] if isinstance(r["output"], list) else [r["output"]] for r in test]
    return {"rougeL": sum(rouge_l(p, ref) for p, ref in zip(responses, refs)) / len(test),
            "knowledge": sum(fact_recall(p, r["facts"]) for p, r in zip(responses, test)) / len(test)}
