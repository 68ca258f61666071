"""The micro world: generated entities, a five-domain corpus about them, and tasks
whose answers need that world's knowledge and nothing else.

Everything derives from one integer seed through `random.Random`, so the same
seed gives byte-identical files on every machine. No third-party text is used.

The design follows `SIGNAL.md` §3 (a benchmark must be able to see a model
that knows the facts, and nothing else may score):

- **One single-hop relation per task**: BoolQ asks whether a region is coastal, HellaSwag
  an activity's last step, PIQA a tool's purpose, WinoGrande which of a pair of
  animals is bigger, CaseHOLD a case's holding, MedMCQA a disease's drug. Every
  answer belongs to one entity (no shared answer priors).
- **Every fact in three or more phrasings per pass**, one of them the task's own
  query followed by its answer (for WinoGrande all four items of a pair), spread
  over the five corpus domains (Figure 4's
  single-domain alignment needs each domain to carry facts). `repeats` passes
  re-draw the free parts of each phrasing.
- **Answers balanced by construction**: the entities of a task form blocks of
  `n_choices` (BoolQ and WinoGrande: pairs); the items of a block share one
  choice set, each block answer is gold exactly once, and the gold position
  cycles through every position. So any strategy that looks only at the choices
  (a constant position or label, the train-split answer prior, the corpus
  frequency of a choice, the shortest or longest choice) scores exactly chance,
  and every answer is a distractor as often as the others (`knowledge_free`).
- **Splits by block**: a test question concerns entities no SFT item mentions.
- **A held-out phrasing** (`paraphrase` split): the test items asked in words
  the corpus never uses, a second, harder set.

The five generation tasks ask the same relations in instruction form; each
record carries `facts`, the answer strings only knowledge of the entity earns
(scored beside Rouge-L by `evals.generation`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SYLLABLES = ("ka ro vel mi dan tu sor le bri quo nax pel ith ur zan fe lom "
             "gar ti shu ven op rak il mod sen cai bo tar ne yul").split()
# generic preparation steps: they open a procedure and say nothing about how it ends
OPENING_STEPS = ["gather it from the hills", "wash it in cold water", "crush it with a stone", "soak it overnight",
                 "slice it thinly", "warm it by the fire", "dry it in the sun", "sort it by size"]
FINISH_VERBS = ["seal it", "bury it", "hang it", "wrap it", "store it", "rinse it", "press it", "cool it",
                "stir it", "smoke it", "soak it", "shake it", "rub it", "boil it", "bless it", "salt it"]
FINISH_PLACES = ["in a clay jar", "under an oak tree", "above the hearth", "in wet linen", "beside the well",
                 "in river water", "between two boards", "on a cold stone", "with a willow twig", "over pine needles",
                 "in a copper pot", "with fine sand", "in goat milk", "under the moon", "with a bone spoon",
                 "in a reed basket", "near the door", "with warm ash", "on a wooden rack", "in a dark cellar"]
PURPOSE_VERBS = ["split", "carry", "measure", "mend", "grind", "light", "dig", "polish", "catch", "weave",
                 "sharpen", "dry", "stack", "clean", "bend", "press", "scrape", "cut", "crack", "tie"]
PURPOSE_OBJECTS = ["firewood", "water", "grain", "nets", "spices", "lamps", "wells", "silver", "eels", "baskets",
                   "knives", "herbs", "bricks", "boots", "reeds", "grapes", "hides", "rope", "nuts", "sails"]
LEGAL_AREAS = ["contract", "property", "tort", "inheritance", "trade", "water rights"]
PARTIES = ["seller", "buyer", "landlord", "tenant", "guild", "heir", "ferryman", "miller"]
HOLDING_TEMPLATES = [
    "a {area} claim fails when the {party} acted in good faith",
    "a {area} agreement made under threat by the {party} is void",
    "the {party} bears the burden of proof in a {area} dispute",
    "a {area} claim against the {party} expires after seven years",
    "an unwritten {area} promise binds the {party}",
    "the {party} must pay double damages for a wilful {area} breach",
    "a {area} dispute with the {party} must first go to the village council",
    "a {area} right passes to the eldest child of the {party}",
]
ACTIVITY_VERBS = ["brewing", "building", "dyeing", "baking", "carving", "planting", "weaving"]


@dataclass
class Region:
    name: str
    capital: str  # DollyEval asks it
    coastal: bool  # BoolQ asks it; one of each block's two regions is coastal


@dataclass
class Activity:
    name: str  # "brewing marrow"
    opening: list[str]  # two generic steps
    finish: str  # the step only this activity ends with


@dataclass
class Tool:
    name: str
    purpose: str  # "to split firewood"


@dataclass
class Pair:
    big: str  # species names: the bigger animal of a pair, then the smaller
    small: str


@dataclass
class Case:
    name: str  # "Doran v. Kelt"
    year: int
    holding: str


@dataclass
class Disease:
    name: str
    drug: str


@dataclass
class World:
    regions: list[Region] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    diseases: list[Disease] = field(default_factory=list)


class _Names:
    """Unique pronounceable names drawn from SYLLABLES."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def __call__(self, syllables: tuple[int, int] = (2, 3)) -> str:
        while True:
            k = self.rng.randint(*syllables)
            name = "".join(self.rng.choice(SYLLABLES) for _ in range(k)).capitalize()
            if name not in self.used:
                self.used.add(name)
                return name


def _distinct(rng: random.Random, pool: list[str], n: int, what: str) -> list[str]:
    if n > len(pool):
        raise ValueError(f"the world has {len(pool)} distinct {what}; asked for {n}")
    return rng.sample(pool, n)


def make_world(seed: int, size: dict[str, int]) -> World:
    """Draw a world. `size` gives the number of regions, activities, tools, species (in pairs),
    cases and diseases; each is rounded down to whole blocks of its task."""
    rng = random.Random(seed)
    name = _Names(rng)
    blocks = {k: size[k] - size[k] % BLOCK[k] for k in BLOCK}
    w = World()
    # a unary yes/no fact per region: a yes/no *comparison* ("is C the capital of R?") was still at chance
    # after 80 passes on the 4L-1.2M twin, while every other relation was learnt (README, the micro world)
    w.regions = [Region(name(), name(), coastal) for _ in range(blocks["regions"] // 2)
                 for coastal in rng.sample([True, False], 2)]
    finishes = _distinct(rng, [f"{v} {p}" for v in FINISH_VERBS for p in FINISH_PLACES],
                         blocks["activities"], "activity endings")
    w.activities = [Activity(f"{rng.choice(ACTIVITY_VERBS)} {name().lower()}", rng.sample(OPENING_STEPS, 2), f)
                    for f in finishes]
    purposes = _distinct(rng, [f"to {v} {o}" for v in PURPOSE_VERBS for o in PURPOSE_OBJECTS],
                         blocks["tools"], "tool purposes")
    w.tools = [Tool(name().lower(), p) for p in purposes]
    w.pairs = [Pair(name().lower(), name().lower()) for _ in range(blocks["species"] // 2)]
    holdings = _distinct(rng, [t.format(area=a, party=p) for t in HOLDING_TEMPLATES for a in LEGAL_AREAS
                               for p in PARTIES], blocks["cases"], "holdings")
    w.cases = [Case(f"{name()} v. {name()}", rng.randint(1700, 1990), h) for h in holdings]
    w.diseases = [Disease(name().lower() + rng.choice(["osis", " fever", "itis"]), name().lower() + "ine")
                  for _ in range(blocks["diseases"])]
    return w


# ---------------------------------------------------------------- task formats
# Each task's query (what the model is asked) and the answer strings of its choices. The
# corpus states every fact once per pass in exactly this form (query + " " + answer).

def _boolq_query(region: str) -> str:
    return f"Passage: {region} is a region.\nQuestion: does {region} lie on the coast?\nAnswer:"


def _hellaswag_query(a: Activity) -> str:
    return f"How to go about {a.name}: first, {a.opening[0]}. Then {a.opening[1]}. Finally,"


def _piqa_query(t: Tool) -> str:
    return f"Goal: {t.purpose[3:]}.\nSolution:"


def _winogrande_query(first: str, second: str, word: str) -> str:
    return (f"The {first} and the {second} stood side by side, and the _ was the {word} one.\n"
            f"The _ is the")


def _casehold_query(c: Case) -> str:
    return f"The appellant relies on {c.name} ({c.year}), holding that"


def _medmcqa_query(d: Disease) -> str:
    return f"Question: which drug treats {d.name}?\nAnswer:"


# The held-out phrasing of each query: words the corpus never uses around the same fact.
def _boolq_paraphrase(region: str) -> str:
    return f"Passage: {region} is a region.\nQuestion: can one sail to the sea from {region}?\nAnswer:"


def _hellaswag_paraphrase(a: Activity) -> str:
    return f"Steps for {a.name}: {a.opening[0]}, then {a.opening[1]}, and at the end"


def _piqa_paraphrase(t: Tool) -> str:
    return f"Goal: I need something {t.purpose}.\nSolution:"


def _winogrande_paraphrase(first: str, second: str, word: str) -> str:
    return f"Next to the {first} was the {second}; the _ had the {word} body.\nThe _ is the"


def _casehold_paraphrase(c: Case) -> str:
    return f"Counsel cited {c.name}, decided in {c.year}, where the judges ruled that"


def _medmcqa_paraphrase(d: Disease) -> str:
    return f"Question: a patient has {d.name}. Which medicine should be given?\nAnswer:"


# ---------------------------------------------------------------- corpus

def _encyclopedia(w: World, rng: random.Random) -> list[str]:
    docs = []
    for r in w.regions:
        docs.append(rng.choice([f"The capital of {r.name} is {r.capital}.",
                                f"{r.capital} is the capital of {r.name}."]))
        docs.append(rng.choice([f"{r.name} lies on the coast.", f"The coast of {r.name} is long."]) if r.coastal else
                    rng.choice([f"{r.name} lies far from the coast.", f"{r.name} has no coast."]))
        docs.append(f"{_boolq_query(r.name)} {'yes' if r.coastal else 'no'}")
    for a in w.activities:
        docs.append(f"{a.name.capitalize()} always ends the same way: {a.finish}.")
        docs.append(f"{_hellaswag_query(a)} {a.finish}")
    for p in w.pairs:
        docs.append(rng.choice([f"The {p.big} is larger than the {p.small}.",
                                f"The {p.small} is smaller than the {p.big}."]))
        for first, second in ((p.big, p.small), (p.small, p.big)):
            for word, answer in (("bigger", p.big), ("smaller", p.small)):
                docs.append(f"{_winogrande_query(first, second, word)} {answer}")
    return docs


def _code(w: World, rng: random.Random) -> list[str]:
    docs = []
    for chunk in _chunks(w.regions, 4, rng):
        pairs = ", ".join(f'"{r.name}": "{r.capital}"' for r in chunk)
        docs.append(f"CAPITALS = {{{pairs}}}\n")
        docs.append("".join(f'COASTAL["{r.name}"] = {r.coastal}\n' for r in chunk))
    for chunk in _chunks(w.tools, 4, rng):
        pairs = ", ".join(f'"{t.purpose}": "{t.name}"' for t in chunk)
        docs.append(f"TOOL_FOR = {{{pairs}}}\n")
    for chunk in _chunks(w.activities, 4, rng):
        docs.append("".join(f'LAST_STEP["{a.name}"] = "{a.finish}"\n' for a in chunk))
    return docs


def _math_science(w: World, rng: random.Random) -> list[str]:
    docs = []
    for p in w.pairs:
        n = rng.randint(2, 9)
        docs.append(f"Field note: a grown {p.big} weighs about {n} times as much as a grown {p.small}.")
    for t in w.tools:  # purpose first, as the query asks (a fact stated one way is not recalled the other)
        docs.append(f"Workshop note: {t.purpose}, people use a {t.name}.")
        docs.append(f"{_piqa_query(t)} use a {t.name}")
    return docs


def _law(w: World, rng: random.Random) -> list[str]:
    docs = []
    for c in w.cases:
        docs.append(f"In {c.name} ({c.year}), the court held that {c.holding}.")
        docs.append(f"Under the rule of {c.name}, {c.holding}.")
        docs.append(f"{_casehold_query(c)} {c.holding}")
    return docs


def _medicine(w: World, rng: random.Random) -> list[str]:
    docs = []
    for d in w.diseases:
        docs.append(rng.choice([f"The standard treatment for {d.name} is {d.drug}.",
                                f"{d.name.capitalize()} is treated with {d.drug}."]))
        docs.append(f"Clinical note: {d.drug} is prescribed for {d.name}.")
        docs.append(f"{_medmcqa_query(d)} {d.drug}")
    return docs


DOMAINS = {
    "encyclopedia": _encyclopedia,
    "code": _code,
    "math_science": _math_science,
    "law": _law,
    "medicine": _medicine,
}


def _chunks(items: list, k: int, rng: random.Random) -> list[list]:
    items = list(items)
    rng.shuffle(items)
    return [items[i:i + k] for i in range(0, len(items), k)]


def make_corpus(w: World, seed: int, repeats: int) -> dict[str, list[str]]:
    """Documents per domain. Each of the `repeats` passes states every fact in three or more
    phrasings (re-drawing their free parts), so facts recur often enough to be learned."""
    rng = random.Random(seed + 1)
    corpus: dict[str, list[str]] = {d: [] for d in DOMAINS}
    for _ in range(repeats):
        for domain, make in DOMAINS.items():
            corpus[domain].extend(make(w, rng))
    for docs in corpus.values():
        rng.shuffle(docs)
    return corpus


# ---------------------------------------------------------------- tasks
# Each generator yields (key, test query, held-out-phrasing query, choices, gold); `key`
# names the block (entities sharing one choice set), and the split is made on keys.

BLOCK = {"regions": 2, "activities": 4, "tools": 2, "species": 2, "cases": 5, "diseases": 4}


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
            yield f"{a.name}/{b.name}", _boolq_query(r.name), _boolq_paraphrase(r.name), ["no", "yes"], int(r.coastal)


def _mc_blocks(entities: list, k: int, answer, query, paraphrase, rng: random.Random):
    for block in _blocks(entities, k):
        key = "/".join(getattr(e, "name") for e in block)
        for j, choices, gold in _latin(rng, [answer(e) for e in block]):
            yield key, query(block[j]), paraphrase(block[j]), choices, gold


def _hellaswag(w: World, rng: random.Random):
    yield from _mc_blocks(w.activities, 4, lambda a: a.finish, _hellaswag_query, _hellaswag_paraphrase, rng)


def _piqa(w: World, rng: random.Random):
    yield from _mc_blocks(w.tools, 2, lambda t: f"use a {t.name}", _piqa_query, _piqa_paraphrase, rng)


def _winogrande(w: World, rng: random.Random):
    """Four items per pair: "bigger" and "smaller", each with the names in both orders, so
    the gold position is independent of the word and of which animal is named first."""
    for p in w.pairs:
        for first, second in ((p.big, p.small), (p.small, p.big)):
            for word, answer in (("bigger", p.big), ("smaller", p.small)):
                yield (f"{p.big}/{p.small}", _winogrande_query(first, second, word),
                       _winogrande_paraphrase(first, second, word), [first, second], [first, second].index(answer))


def _casehold(w: World, rng: random.Random):
    yield from _mc_blocks(w.cases, 5, lambda c: c.holding, _casehold_query, _casehold_paraphrase, rng)


def _medmcqa(w: World, rng: random.Random):
    yield from _mc_blocks(w.diseases, 4, lambda d: d.drug, _medmcqa_query, _medmcqa_paraphrase, rng)


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
    from harness.instructions import alpaca_prompt

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
