"""Rouge-L as MiniLLM computes it (LMOps `minillm/rouge_metric.py`): `rouge_score`'s
Rouge-L F-measure with the Porter stemmer and its default tokenizer (lowercase,
non-alphanumerics to spaces, non-ASCII dropped), the maximum over the references,
x100, averaged over examples."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, references: list[str]) -> float:
    """Best Rouge-L F (x100) of `prediction` against any reference; 0 with no references."""
    return max((100.0 * _scorer().score(ref, prediction)["rougeL"].fmeasure for ref in references), default=0.0)


def mean_rouge_l(predictions: list[str], references: list[list[str]]) -> float:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference lists")
    if not predictions:
        raise ValueError("no predictions to score")
    return sum(rouge_l(p, r) for p, r in zip(predictions, references)) / len(predictions)
