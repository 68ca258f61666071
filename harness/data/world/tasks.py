"""The micro world's tasks: multiple-choice items in blocks that share one choice set (answers
balanced by construction, splits made on blocks) and the five instruction-following tasks, each
record carrying the facts only knowledge of its entity earns. The design is `harness/data/world/`'s
docstring; the queries are its phrasings, which its corpus also states."""

from __future__ import annotations

import random

from harness.data.world import phrasings as ph
from harness.data.world.generate import World

# ---------------------------------------------------------------- tasks
# Each generator yields (key, test query, held-out-phrasing query, choices, gold); `key`
# names the block (entities sharing one choice set), and the split is made on keys.

def _latin(rng: random.Random, answers: list[str]):
    """The choice lists of one block: item j (whose gold is `answers[j]`) gets the block's
    answers in one fixed cyclic order, rotated so that its gold sits at position j."""
    k = len(answers)
    order = rng.sample(range(k), k)
    for j in range(k):
        rotation = [answers[order[(i + order.index(j) - j) % k]] for i in range(k)]
        yield j, rotation, j


def _blocks(items: list, k: int) -> list[list]:
    return [items[i:i + k] for i in range(0, len(items) - k + 1, k)]


def _boolq(w: World, rng: random.Random):
    """One item per region; of each block's two regions one is coastal (yes), one not (no)."""
    for a, b in _blocks(w.regions, 2):
        for r in (a, b):
            yield f"{a.name}/{b.name}", ph.boolq_query(r.name), ph.boolq_paraphrase(r.name), ["no", "yes"], int(r.coastal)


def _mc_blocks(entities: list, k: int, answer, query, paraphrase, rng: random.Random):
    for block in _blocks(entities, k):
        key = "/".join(getattr(e, "name") for e in block)
        for j, choices, gold in _latin(rng, [answer(e) for e in block]):
            yield key, query(block[j]), paraphrase(block[j]), choices, gold


def _hellaswag(w: World, rng: random.Random):
    yield from _mc_blocks(w.activities, 4, lambda a: a.finish, ph.hellaswag_query, ph.hellaswag_paraphrase, rng)


def _piqa(w: World, rng: random.Random):
    yield from _mc_blocks(w.tools, 2, lambda t: f"use a {t.name}", ph.piqa_query, ph.piqa_paraphrase, rng)


def _winogrande(w: World, rng: random.Random):
    """Four items per pair: "bigger" and "smaller", each with the names in both orders, so
    the gold position is independent of the word and of which animal is named first."""
    for p in w.pairs:
        for first, second in ((p.big, p.small), (p.small, p.big)):
            for word, answer in (("bigger", p.big), ("smaller", p.small)):
                yield (f"{p.big}/{p.small}", ph.winogrande_query(first, second, word),
                       ph.winogrande_paraphrase(first, second, word), [first, second], [first, second].index(answer))


def _casehold(w: World, rng: random.Random):
    yield from _mc_blocks(w.cases, 5, lambda c: c.holding, ph.casehold_query, ph.casehold_paraphrase, rng)


def _medmcqa(w: World, rng: random.Random):
    yield from _mc_blocks(w.diseases, 4, lambda d: d.drug, ph.medmcqa_query, ph.medmcqa_paraphrase, rng)


TASKS = {
    "boolq": _boolq,
    "hellaswag": _hellaswag,
    "piqa": _piqa,
    "winogrande": _winogrande,
    "casehold": _casehold,
    "medmcqa": _medmcqa,
}


# ---------------------------------------------------------------- generation tasks
# Instruction-following in the formats of the paper's Table 3 sets; each generator yields
# (key, instruction, input, output, facts) and the records are MiniLLM's format plus `facts`.

def _dolly(w: World, rng: random.Random):
    """Dolly: open QA."""
    for r in w.regions:
        yield r.name, f"What is the capital of {r.name}?", "", f"The capital of {r.name} is {r.capital}.", [r.capital]


def _sinst(w: World, rng: random.Random):
    """S-NI: a task definition, an input, an output."""
    for d in w.diseases:
        yield d.name, "In this task you are given the name of a disease. Name its standard treatment.", \
            d.name, f"{d.name.capitalize()} is treated with {d.drug}.", [d.drug]


def _uinst(w: World, rng: random.Random):
    """UnNI: a terse instruction applied to an input, a short answer."""
    for t in w.tools:
        yield t.name, "Say what the given tool is used for.", t.name, f"People use a {t.name} {t.purpose}.", \
            [t.purpose]


def _self_inst(w: World, rng: random.Random):
    """Self-Instruct user-oriented: a practical request with an instance input."""
    for a in w.activities:
        yield a.name, "Write the steps of the following activity, in order.", a.name, \
            f"First, {a.opening[0]}. Then {a.opening[1]}. Finally, {a.finish}.", [a.finish]


def _vicuna(w: World, rng: random.Random):
    """Vicuna: open questions, no input."""
    for c in w.cases:
        yield c.name, f"What did the court decide in {c.name}?", "", \
            f"In {c.name} ({c.year}), the court held that {c.holding}.", [c.holding]


GENERATION_TASKS = {
    "dolly": _dolly,
    "sinst": _sinst,
    "uinst": _uinst,
    "self_inst": _self_inst,
    "vicuna": _vicuna,
}
N_CHOICES = {"boolq": 2, "hellaswag": 4, "piqa": 2, "winogrande": 2, "casehold": 5, "medmcqa": 4}


def make_task(w: World, task: str, seed: int, test_fraction: float) -> dict[str, list[dict]]:
    """Train/test records for one task, split by block key: `{query, choices, gold}` for a
    multiple-choice task (plus a `paraphrase` split: the test items in held-out words),
    MiniLLM's `{instruction, input, output, prompt}` plus `facts` for a generation task."""
    from harness.data.instructions import alpaca_prompt

    rng = random.Random(f"{seed}:{task}")
    generation = task in GENERATION_TASKS
    items = list((GENERATION_TASKS if generation else TASKS)[task](w, rng))
    keys = sorted({item[0] for item in items})
    rng.shuffle(keys)
    n_test = max(1, round(len(keys) * test_fraction))
    test_keys = set(keys[:n_test])
    # generation tasks also get a dev split (Rouge-L logged during SFT), a tenth of the keys
    dev_keys = set(keys[n_test:n_test + max(1, len(keys) // 10)]) if generation else set()
    splits: dict[str, list[dict]] = {"train": [], "test": [], **({"dev": []} if generation else {"paraphrase": []})}
    for key, *rest in items:
        split = "test" if key in test_keys else "dev" if key in dev_keys else "train"
        if generation:
            instruction, inp, output, facts = rest
            splits[split].append({"key": key, "instruction": instruction, "input": inp, "output": output,
                                  "prompt": alpaca_prompt(instruction, inp), "facts": facts})
            continue
        query, paraphrase, choices, gold = rest
        splits[split].append({"key": key, "query": query, "choices": choices, "gold": gold})
        if split == "test":
            splits["paraphrase"].append({"key": key, "query": paraphrase, "choices": choices, "gold": gold})
    return splits
