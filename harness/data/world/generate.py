"""The world's entities (drawn from one seed) and its five-domain corpus, whose every fact
is stated in the phrasings of `harness/data/world/phrasings.py`. The design is the package's docstring."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from harness.data.world import phrasings

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


# entities per block of a task's choice set (the tasks, harness/data/world/tasks.py, split on blocks)
BLOCK = {"regions": 2, "activities": 4, "tools": 2, "species": 2, "cases": 5, "diseases": 4}


def make_world(seed: int, size: dict[str, int]) -> World:
    """Draw a world. `size` gives the number of regions, activities, tools, species (in pairs),
    cases and diseases; each is rounded down to whole blocks of its task."""
    rng = random.Random(seed)
    name = _Names(rng)
    blocks = {k: size[k] - size[k] % BLOCK[k] for k in BLOCK}
    w = World()
    # a unary yes/no fact per region: a yes/no *comparison* ("is C the capital of R?") was still at chance
    # after 80 passes on the 4L-1.2M twin, while every other relation was learnt (docs/signal.md, the micro world)
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


# ---------------------------------------------------------------- corpus

def _encyclopedia(w: World, rng: random.Random) -> list[str]:
    docs = []
    for r in w.regions:
        docs.append(rng.choice([f"The capital of {r.name} is {r.capital}.",
                                f"{r.capital} is the capital of {r.name}."]))
        docs.append(rng.choice([f"{r.name} lies on the coast.", f"The coast of {r.name} is long."]) if r.coastal else
                    rng.choice([f"{r.name} lies far from the coast.", f"{r.name} has no coast."]))
        docs.append(f"{phrasings.boolq_query(r.name)} {'yes' if r.coastal else 'no'}")
    for a in w.activities:
        docs.append(f"{a.name.capitalize()} always ends the same way: {a.finish}.")
        docs.append(f"{phrasings.hellaswag_query(a)} {a.finish}")
    for p in w.pairs:
        docs.append(rng.choice([f"The {p.big} is larger than the {p.small}.",
                                f"The {p.small} is smaller than the {p.big}."]))
        for first, second in ((p.big, p.small), (p.small, p.big)):
            for word, answer in (("bigger", p.big), ("smaller", p.small)):
                docs.append(f"{phrasings.winogrande_query(first, second, word)} {answer}")
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
        docs.append(f"{phrasings.piqa_query(t)} use a {t.name}")
    return docs


def _law(w: World, rng: random.Random) -> list[str]:
    docs = []
    for c in w.cases:
        docs.append(f"In {c.name} ({c.year}), the court held that {c.holding}.")
        docs.append(f"Under the rule of {c.name}, {c.holding}.")
        docs.append(f"{phrasings.casehold_query(c)} {c.holding}")
    return docs


def _medicine(w: World, rng: random.Random) -> list[str]:
    docs = []
    for d in w.diseases:
        docs.append(rng.choice([f"The standard treatment for {d.name} is {d.drug}.",
                                f"{d.name.capitalize()} is treated with {d.drug}."]))
        docs.append(f"Clinical note: {d.drug} is prescribed for {d.name}.")
        docs.append(f"{phrasings.medmcqa_query(d)} {d.drug}")
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

