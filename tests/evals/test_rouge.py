"""Rouge-L against hand-computed cases."""

import pytest

from evals.rouge import mean_rouge_l, rouge_l


def f1(lcs, n_pred, n_ref):
    p, r = lcs / n_pred, lcs / n_ref
    return 100 * 2 * p * r / (p + r)


def test_exact_match_is_100_and_disjoint_is_0():
    assert rouge_l("the red fox", ["the red fox"]) == pytest.approx(100.0)
    assert rouge_l("blue whale", ["the red fox"]) == 0.0


def test_longest_common_subsequence_not_substring():
    # LCS of "a b c d e" and "a x c y e" is "a c e" (3 tokens, not contiguous)
    assert rouge_l("a x c y e", ["a b c d e"]) == pytest.approx(f1(3, 5, 5))


def test_stemming_and_case_and_punctuation():
    # cats -> cat, running/runs -> run; "Were" unmatched; punctuation and case ignored
    assert rouge_l("The cat, runs!", ["the cats were running"]) == pytest.approx(f1(3, 3, 4))


def test_max_over_references():
    refs = ["completely different words", "the red fox jumps"]
    assert rouge_l("the red fox", refs) == pytest.approx(f1(3, 3, 4))
    assert rouge_l("the red fox", refs[::-1]) == rouge_l("the red fox", refs)


def test_empty_output_and_no_references():
    assert rouge_l("", ["the red fox"]) == 0.0
    assert rouge_l("anything", []) == 0.0


def test_mean_and_bad_lengths():
    assert mean_rouge_l(["a b", "c"], [["a b"], ["d"]]) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        mean_rouge_l(["a"], [])
