"""The generated world: deterministic, multi-domain, tasks split by entity."""

import json

import pytest

from harness import world
from tests.conftest import SMALL_WORLD


def _task_splits(seed):
    w = world.make_world(seed, SMALL_WORLD["size"])
    return {t: world.make_task(w, t, seed, 0.3) for t in world.TASKS}


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
def test_splits_are_disjoint_by_entity_and_well_formed(task):
    splits = _task_splits(11)[task]
    train_keys = {r["key"] for r in splits["train"]}
    test_keys = {r["key"] for r in splits["test"]}
    assert splits["train"] and splits["test"]
    assert not train_keys & test_keys
    n_choices = {"boolq": 2, "hellaswag": 4, "piqa": 2, "winogrande": 2, "casehold": 5, "medmcqa": 4}[task]
    for r in splits["train"] + splits["test"]:
        assert len(r["choices"]) == n_choices
        assert len(set(r["choices"])) == n_choices, r
        assert 0 <= r["gold"] < n_choices


def test_answers_are_stated_in_the_corpus():
    """Every medical answer is a fact of the corpus: the knowledge the tasks need is there."""
    w = world.make_world(5, SMALL_WORLD["size"])
    text = "\n".join(d for docs in world.make_corpus(w, 5, 1).values() for d in docs)
    for r in world.make_task(w, "medmcqa", 5, 0.3)["test"]:
        answer = r["choices"][r["gold"]]
        assert answer in text


def test_gold_labels_are_not_positional():
    """Shuffled choices: no fixed answer position a student could learn instead of facts."""
    golds = [r["gold"] for t in ("hellaswag", "casehold", "medmcqa") for s in _task_splits(2)[t].values() for r in s]
    assert len(set(golds)) > 2


def test_world_stage_writes_files(world_dir):
    assert (world_dir / "corpus.txt").stat().st_size > 10_000
    record = json.loads((world_dir / "run.json").read_text())
    assert record["stage"] == "world" and record["seed"] == SMALL_WORLD["seed"]
    for task in world.TASKS:
        assert (world_dir / "tasks" / task / "test.jsonl").is_file()
