"""The generated world: deterministic, multi-domain, balanced so that only knowledge scores.

These check docs/signal.md's design targets exactly on a smoke-size world (A1's floors
are exact by construction, not approximately chance) and on the micro world's sizes.
"""

import json
from collections import Counter

import pytest

from harness.analysis import floors
from harness.data import world
from harness.workflow.config import load_profile
from tests.conftest import SMALL_WORLD

MICRO = load_profile("micro")["world"]


def _task_splits(seed, size=SMALL_WORLD["size"], fraction=0.5):
    w = world.make_world(seed, size)
    return {t: world.make_task(w, t, seed, fraction) for t in world.TASKS}


def _corpus_text(w, seed, repeats=1):
    return "\n\n".join(d for docs in world.make_corpus(w, seed, repeats).values() for d in docs)


def test_same_seed_same_world_corpus_and_tasks():
    a, b = world.make_world(3, SMALL_WORLD["size"]), world.make_world(3, SMALL_WORLD["size"])
    assert a == b
    assert world.make_corpus(a, 3, 2) == world.make_corpus(b, 3, 2)
    assert _task_splits(3) == _task_splits(3)


def test_other_seed_other_world():
    assert _task_splits(3) != _task_splits(4)


def test_corpus_has_every_domain():
    corpus = world.make_corpus(world.make_world(0, SMALL_WORLD["size"]), 0, 1)
    assert set(corpus) == {"encyclopedia", "code", "math_science", "law", "medicine"}
    assert all(corpus.values())


@pytest.mark.parametrize("task", list(world.TASKS))
def test_splits_are_disjoint_by_block_and_well_formed(task):
    splits = _task_splits(11)[task]
    train_keys = {r["key"] for r in splits["train"]}
    test_keys = {r["key"] for r in splits["test"]}
    assert splits["train"] and splits["test"]
    assert not train_keys & test_keys
    train_text = json.dumps(splits["train"])
    for key in test_keys:  # no SFT item mentions an entity a test item asks about
        assert all(name not in train_text for name in key.split("/"))
    n_choices = world.N_CHOICES[task]
    for r in splits["train"] + splits["test"]:
        assert len(r["choices"]) == n_choices
        assert len(set(r["choices"])) == n_choices, r
        assert 0 <= r["gold"] < n_choices


@pytest.mark.parametrize("task", list(world.TASKS))
def test_answers_are_balanced_exactly_within_each_split(task):
    """Gold positions equally often in each split; every answer (choice string) as often gold as any
    other and as often a distractor as any other; BoolQ's yes and no equally often."""
    n = world.N_CHOICES[task]
    for name, records in _task_splits(5)[task].items():
        positions = Counter(r["gold"] for r in records)
        assert set(positions.values()) == {len(records) // n}, (name, positions)
        gold = Counter(r["choices"][r["gold"]] for r in records)
        shown = Counter(c for r in records for c in r["choices"])
        assert len(set(gold.values())) == 1, (name, gold)
        assert all(shown[c] == n * gold[c] for c in gold) or task == "boolq"


@pytest.mark.parametrize("task", list(world.TASKS))
def test_knowledge_free_strategies_score_exactly_chance(task):
    """A1's floors on the test split: every strategy that reads only the choices gets exactly
    100 / n_choices (query overlap reads the query too: it is checked on the micro world, whose
    200+ items per task make a 3-point margin meaningful, in the next test)."""
    w = world.make_world(9, SMALL_WORLD["size"])
    splits = world.make_task(w, task, 9, 0.5)
    scores = floors.multiple_choice(splits["train"], splits["test"], _corpus_text(w, 9, 2))
    chance = 100 / world.N_CHOICES[task]
    for strategy, score in scores.items():
        if strategy != "query overlap":
            assert score == pytest.approx(chance), (strategy, score)


def test_micro_world_has_200_test_items_per_task_and_chance_floors():
    w = world.make_world(MICRO["seed"], MICRO["size"])
    text = _corpus_text(w, MICRO["seed"])
    for task in world.TASKS:
        splits = world.make_task(w, task, MICRO["seed"], MICRO["test_fraction"])
        assert len(splits["test"]) >= 200, task
        scores = floors.multiple_choice(splits["train"], splits["test"], text)
        assert max(scores.values()) <= 100 / world.N_CHOICES[task] + 3, (task, scores)


def test_every_fact_is_stated_in_three_phrasings_one_the_query_and_answer():
    w = world.make_world(5, SMALL_WORLD["size"])
    corpus = world.make_corpus(w, 5, 1)
    text = "\n\n".join(d for docs in corpus.values() for d in docs)
    for task in world.TASKS:
        for r in world.make_task(w, task, 5, 0.5)["test"]:
            assert f"{r['query']} {r['choices'][r['gold']]}" in text, (task, r)
    for d in w.diseases:
        assert sum(d.drug in doc and d.name in doc.lower() for doc in corpus["medicine"]) == 3
    for c in w.cases:
        assert sum(c.holding in doc for doc in corpus["law"]) == 3
    for t in w.tools:
        assert sum(t.purpose[3:] in doc and t.name in doc for docs in corpus.values() for doc in docs) == 3


def test_paraphrase_split_asks_the_test_items_in_words_the_corpus_lacks():
    w = world.make_world(5, SMALL_WORLD["size"])
    text = _corpus_text(w, 5, 2)
    for task in world.TASKS:
        splits = world.make_task(w, task, 5, 0.5)
        para, test = splits["paraphrase"], splits["test"]
        assert [(r["key"], r["choices"], r["gold"]) for r in para] == [(r["key"], r["choices"], r["gold"]) for r in test]
        assert all(p["query"] != t["query"] and p["query"] not in text for p, t in zip(para, test)), task


@pytest.mark.parametrize("task", list(world.GENERATION_TASKS))
def test_generation_sets_carry_facts_the_template_baseline_cannot_earn(task):
    w = world.make_world(5, MICRO["size"])
    splits = world.make_task(w, task, 5, 0.8)
    assert all(r["facts"] and all(f in r["output"] for f in r["facts"]) for s in splits.values() for r in s)
    score = floors.generation(splits["train"], splits["test"])
    assert score["knowledge"] == 0.0  # another entity's answer, never this one's
    assert score["rougeL"] > 40  # while Rouge-L rewards the template


def test_world_stage_writes_files(world_dir):
    assert (world_dir / "corpus.txt").stat().st_size > 10_000
    record = json.loads((world_dir / "run.json").read_text())
    assert record["stage"] == "world" and record["seed"] == SMALL_WORLD["seed"]
    for task in world.TASKS:
        for split in ("train", "test", "paraphrase"):
            assert (world_dir / "tasks" / task / f"{split}.jsonl").is_file()
