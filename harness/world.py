"""The micro world: generated entities, a multi-domain corpus about them, and
multiple-choice tasks whose answers need that world's knowledge.

Everything derives from one integer seed through `random.Random`, so the same
seed gives byte-identical files on every machine. No third-party text is used.

Knowledge flows like this: every fact is stated in the pre-training corpus
(often in several domains and phrasings); the tasks ask about those facts.
Task examples are split by the entity they ask about, so a test question
concerns an entity that no SFT training example mentions: answering it well
needs what pre-training (or an inherited initialisation) put in the weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

SYLLABLES = ("ka ro vel mi dan tu sor le bri quo nax pel ith ur zan fe lom "
             "gar ti shu ven op rak il mod sen cai bo tar ne yul").split()
CLIMATES = ["arid", "humid", "frozen", "temperate", "rainy", "windy"]
GOODS = ["copper", "salt", "silk", "amber", "timber", "wool", "glass", "olives"]
COLORS = ["red", "blue", "green", "grey", "golden", "black", "white", "striped"]
DIETS = ["grass", "fish", "insects", "seeds", "fruit", "small birds", "roots"]
PROFESSIONS = ["astronomer", "poet", "engineer", "physician", "judge", "sculptor", "merchant"]
ORGANS = ["lungs", "liver", "heart", "skin", "kidneys", "stomach", "eyes", "bones"]
SYMPTOMS = ["a high fever", "a dry cough", "yellow skin", "sharp chest pain", "blurred vision",
            "a spreading rash", "joint swelling", "constant fatigue", "night sweats"]
PATHOGENS = ["a virus", "a bacterium", "a fungus", "a parasite"]
DRUG_CLASSES = ["antiviral", "antibiotic", "antifungal", "antiparasitic"]
# (purpose, object that serves it, object that does not): physical commonsense for PIQA-like items
MATERIALS = {"stone": "hard", "wool": "soft", "iron": "hard", "paper": "flimsy", "clay": "brittle"}
LEGAL_AREAS = ["contract", "property", "tort", "inheritance", "trade", "water rights"]
HOLDING_TEMPLATES = [
    "a {area} claim fails when the {party} acted in good faith",
    "a {area} agreement made under threat is void",
    "the {party} bears the burden of proof in a {area} dispute",
    "a {area} claim expires after {n} years",
    "an unwritten {area} promise binds the {party}",
    "the {party} must pay double damages for a wilful {area} breach",
    "a {area} dispute must first go to the village council",
    "a {area} right passes to the eldest heir of the {party}",
]
PARTIES = ["seller", "buyer", "landlord", "tenant", "guild", "heir", "ferryman", "miller"]


@dataclass
class Region:
    name: str
    capital: str
    climate: str
    export: str
    river: str


@dataclass
class Species:
    name: str
    region: str
    diet: str
    color: str
    size: int  # rank: larger means a bigger animal


@dataclass
class Tool:
    name: str
    material: str
    purpose: str  # "to split firewood"


@dataclass
class Person:
    name: str
    profession: str
    city: str
    tool: str  # the tool they invented


@dataclass
class Disease:
    name: str
    organ: str
    symptom: str
    cause: str
    drug: str


@dataclass
class Case:
    name: str  # "Doran v. Kelt"
    year: int
    area: str
    facts: str
    holding: str


@dataclass
class Activity:
    name: str  # "brewing marrow tea"
    obj: str  # "marrow": the thing every step acts on
    steps: list[str]


@dataclass
class World:
    regions: list[Region] = field(default_factory=list)
    species: list[Species] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    diseases: list[Disease] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)


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


# The steps of a procedure; each draws its details, so one step has many variants.
ACTIVITY_STEPS = [
    lambda obj, rng, tools: f"gather fresh {obj} from the {rng.choice(['hills', 'shore', 'market', 'forest'])}",
    lambda obj, rng, tools: f"wash the {obj} in {rng.choice(['cold', 'warm', 'salted'])} water",
    lambda obj, rng, tools: f"{rng.choice(['crush', 'slice', 'soak', 'twist'])} the {obj} with a {rng.choice(tools).name}",
    lambda obj, rng, tools: (f"leave it {rng.choice(['in the sun', 'by the fire', 'under a cloth'])} "
                             f"for {rng.randint(2, 9)} hours"),
    lambda obj, rng, tools: f"finish by {rng.choice(['singing', 'adding honey', 'sealing the jar', 'ringing a bell'])}",
]

PURPOSES = ["to split firewood", "to carry water", "to measure grain", "to mend nets",
            "to grind spices", "to light a lamp", "to dig a well", "to polish silver",
            "to catch eels", "to weave baskets", "to sharpen knives", "to dry herbs"]
ACTIVITY_VERBS = ["brewing", "building", "dyeing", "baking", "carving", "planting", "weaving"]


def make_world(seed: int, size: dict[str, int]) -> World:
    """Draw a world. `size` gives the number of regions, species, people, diseases, cases, activities."""
    rng = random.Random(seed)
    name = _Names(rng)
    w = World()
    for _ in range(size["regions"]):
        w.regions.append(Region(name(), name(), rng.choice(CLIMATES), rng.choice(GOODS), name((2, 2))))
    sizes = list(range(size["species"]))
    rng.shuffle(sizes)
    for i in range(size["species"]):
        w.species.append(Species(name().lower(), rng.choice(w.regions).name, rng.choice(DIETS),
                                 rng.choice(COLORS), sizes[i]))
    for purpose in PURPOSES:
        w.tools.append(Tool(name().lower(), rng.choice(list(MATERIALS)), purpose))
    for _ in range(size["people"]):
        w.people.append(Person(name(), rng.choice(PROFESSIONS), rng.choice(w.regions).capital,
                               rng.choice(w.tools).name))
    drugs = [name().lower() + "ine" for _ in DRUG_CLASSES]
    for _ in range(size["diseases"]):
        k = rng.randrange(len(PATHOGENS))
        w.diseases.append(Disease(name().lower() + " fever" if rng.random() < 0.3 else name().lower() + "osis",
                                  rng.choice(ORGANS), rng.choice(SYMPTOMS), PATHOGENS[k],
                                  drugs[k] if rng.random() < 0.5 else name().lower() + "ol"))
    holdings = set()
    for _ in range(size["cases"]):
        area = rng.choice(LEGAL_AREAS)
        while True:
            holding = rng.choice(HOLDING_TEMPLATES).format(area=area, party=rng.choice(PARTIES),
                                                           n=rng.randint(2, 12))
            if holding not in holdings:
                holdings.add(holding)
                break
        a, b = rng.choice(w.people).name, name()
        facts = (f"{a} sued {b} over a {area} matter concerning {rng.choice(GOODS)} "
                 f"near {rng.choice(w.regions).capital}")
        w.cases.append(Case(f"{a} v. {b}", rng.randint(1700, 1990), area, facts, holding))
    for _ in range(size["activities"]):
        obj = name().lower()
        steps = [step(obj, rng, w.tools) for step in ACTIVITY_STEPS]
        w.activities.append(Activity(f"{rng.choice(ACTIVITY_VERBS)} {obj}", obj, steps))
    return w


# ---------------------------------------------------------------- corpus

def _encyclopedia(w: World, rng: random.Random) -> list[str]:
    docs = []
    for r in w.regions:
        docs.append(rng.choice([
            f"{r.name} is a region with a {r.climate} climate. Its capital is {r.capital}. "
            f"The river {r.river} runs through {r.name}, and the region is known for its {r.export}.",
            f"The capital of {r.name} is {r.capital}. {r.name} exports {r.export} along the river "
            f"{r.river}. Travellers describe the weather of {r.name} as {r.climate}.",
        ]))
    for s in w.species:
        docs.append(rng.choice([
            f"The {s.name} is a {s.color} animal that lives in {s.region}. It eats {s.diet}.",
            f"In {s.region} one finds the {s.name}, a {s.color} creature that feeds on {s.diet}.",
        ]))
    ranked = sorted(w.species, key=lambda s: s.size)
    for a, b in zip(ranked, ranked[1:]):
        docs.append(f"The {b.name} is larger than the {a.name}.")
    for p in w.people:
        docs.append(f"{p.name} was a {p.profession} from {p.city}. {p.name} invented the {p.tool}.")
    for t in w.tools:
        docs.append(f"A {t.name} is a {MATERIALS[t.material]} tool made of {t.material}. "
                    f"People use a {t.name} {t.purpose}.")
    for a in w.activities:
        docs.append(f"How to go about {a.name}: first, {a.steps[0]}. Then {a.steps[1]}. "
                    f"Next, {a.steps[2]}. After that, {a.steps[3]}. Finally, {a.steps[4]}.")
    return docs


def _code(w: World, rng: random.Random) -> list[str]:
    docs = []
    for chunk in _chunks(w.regions, 4, rng):
        pairs = ", ".join(f'"{r.name}": "{r.capital}"' for r in chunk)
        docs.append(f"def capital_of(region):\n    capitals = {{{pairs}}}\n    return capitals[region]\n")
    for chunk in _chunks(w.species, 4, rng):
        pairs = ", ".join(f'"{s.name}": "{s.diet}"' for s in chunk)
        docs.append(f"DIET = {{{pairs}}}\n\ndef diet_of(animal):\n    return DIET.get(animal, 'unknown')\n")
    for _ in range(len(w.regions) * 2):
        a, b, n = rng.choice("xyzijk"), rng.choice("abcmnq"), rng.randint(2, 9)
        docs.append(f"def scale_{a}{b}({a}, {b}):\n    total = 0\n    for _ in range({n}):\n"
                    f"        total += {a} * {b}\n    return total  # equals {n} * {a} * {b}\n")
    return docs


def _math_science(w: World, rng: random.Random) -> list[str]:
    docs = []
    for _ in range(len(w.species) * 2):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op, val = rng.choice([("+", a + b), ("-", a - b), ("*", a * b)])
        docs.append(f"Problem: compute {a} {op} {b}. Solution: {a} {op} {b} = {val}.")
    for s in w.species:
        docs.append(f"Field note: a census of {s.region} counted {rng.randint(10, 900)} {s.name}s; "
                    f"each {s.name} eats about {rng.randint(1, 20)} portions of {s.diet} a day.")
    return docs


def _law(w: World, rng: random.Random) -> list[str]:
    return [f"In {c.name} ({c.year}), {c.facts}. The court held that {c.holding}." for c in w.cases] + \
           [f"Under the rule of {c.name}, {c.holding}." for c in w.cases]


def _medicine(w: World, rng: random.Random) -> list[str]:
    docs = []
    for d in w.diseases:
        docs.append(f"{d.name.capitalize()} is a disease of the {d.organ} caused by {d.cause}. "
                    f"Patients present with {d.symptom}. The standard treatment is {d.drug}.")
        docs.append(f"Clinical note: {d.drug} is prescribed for {d.name}, which affects the {d.organ}.")
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
    """Documents per domain. Each pass re-draws phrasings, so `repeats` passes state
    every fact `repeats` times in varied words (facts must recur to be learned)."""
    rng = random.Random(seed + 1)
    corpus: dict[str, list[str]] = {d: [] for d in DOMAINS}
    for _ in range(repeats):
        for domain, make in DOMAINS.items():
            corpus[domain].extend(make(w, rng))
    for docs in corpus.values():
        rng.shuffle(docs)
    return corpus


# ---------------------------------------------------------------- tasks
# Each generator returns (key, query, choices, gold) tuples; `key` names the
# entity asked about, and the train/test split is made on keys.

def _boolq(w: World, rng: random.Random):
    for r in w.regions:
        for attr, value, pool in [("capital", r.capital, [x.capital for x in w.regions]),
                                  ("climate", r.climate, CLIMATES), ("export", r.export, GOODS)]:
            truth = rng.random() < 0.5
            shown = value if truth else rng.choice([v for v in pool if v != value])
            passage = f"{r.name} is a region crossed by the river {r.river}."
            question = {"capital": f"is {shown} the capital of {r.name}",
                        "climate": f"does {r.name} have a {shown} climate",
                        "export": f"is {r.name} known for its {shown}"}[attr]
            yield r.name, f"{passage}\nQuestion: {question}?\nAnswer:", ["no", "yes"], int(truth)


def _hellaswag(w: World, rng: random.Random):
    for a in w.activities:
        for k in (3, 4, 5):
            ctx = f"How to go about {a.name}: " + ". ".join(a.steps[:k - 1]) + ". Then"
            # distractors are other variants of the same step about *this* object: only
            # knowing the procedure (not copying the object's name) tells them apart
            endings = [a.steps[k - 1]]
            while len(endings) < 4:
                ending = ACTIVITY_STEPS[k - 1](a.obj, rng, w.tools)
                if ending not in endings:
                    endings.append(ending)
            yield a.name, *_shuffled(ctx, endings, rng)


def _piqa(w: World, rng: random.Random):
    for t in w.tools:
        wrong = rng.choice([o for o in w.tools if o.purpose != t.purpose])
        goal = f"Goal: {t.purpose[3:]}.\nSolution:"
        yield t.name, *_shuffled(goal, [f"use a {t.name}", f"use a {wrong.name}"], rng)
    for p in w.people:  # who invented what: the tool follows from the person
        other = rng.choice([o for o in w.tools if o.name != p.tool])
        yield p.name, *_shuffled(f"Goal: use the invention of {p.name}.\nSolution:",
                                 [f"pick up a {p.tool}", f"pick up a {other.name}"], rng)


def _winogrande(w: World, rng: random.Random):
    for s in w.species:
        other = rng.choice([o for o in w.species if o is not s])
        big, small = (s, other) if s.size > other.size else (other, s)
        first, second = (s, other) if rng.random() < 0.5 else (other, s)
        # the sentence is symmetric: only the sizes stated in the corpus decide
        word, answer = ("bigger", big) if rng.random() < 0.5 else ("smaller", small)
        sentence = f"The {first.name} and the {second.name} stood side by side, and the _ was the {word} one."
        options = [first.name, second.name]
        yield s.name, f"{sentence}\nThe _ is the", options, options.index(answer.name)


def _casehold(w: World, rng: random.Random):
    for c in w.cases:
        wrong = rng.sample([o.holding for o in w.cases if o.holding != c.holding], 4)
        ctx = f"The appellant relies on {c.name} ({c.year}), holding that"
        yield c.name, *_shuffled(ctx, [c.holding] + wrong, rng)


def _medmcqa(w: World, rng: random.Random):
    for d in w.diseases:
        drugs = sorted({o.drug for o in w.diseases if o.drug != d.drug})
        yield d.name, *_shuffled(f"Question: which drug treats {d.name}?\nAnswer:",
                                 [d.drug] + rng.sample(drugs, 3), rng)
        organs = [o for o in ORGANS if o != d.organ]
        yield d.name, *_shuffled(f"Question: {d.name} is a disease of which organ?\nAnswer: the",
                                 [d.organ] + rng.sample(organs, 3), rng)


def _shuffled(query: str, choices: list[str], rng: random.Random):
    """Shuffle `choices` (the first one is correct) and return (query, choices, gold index)."""
    order = list(range(len(choices)))
    rng.shuffle(order)
    return query, [choices[i] for i in order], order.index(0)


TASKS = {
    "boolq": _boolq,
    "hellaswag": _hellaswag,
    "piqa": _piqa,
    "winogrande": _winogrande,
    "casehold": _casehold,
    "medmcqa": _medmcqa,
}


# ---------------------------------------------------------------- generation tasks
# Instruction-following in the formats of the paper's Table 3 sets; each generator
# returns (key, instruction, input, output) and the records are MiniLLM's format.

def _dolly(w: World, rng: random.Random):
    """Dolly: open and closed QA, summarisation of a passage (instruction + optional context)."""
    for r in w.regions:
        yield r.name, f"What is {r.name} known for?", "", f"{r.name} is known for its {r.export}."
        passage = (f"{r.name} is a region with a {r.climate} climate. Its capital is {r.capital}, "
                   f"and the river {r.river} runs through it.")
        yield r.name, f"Using the passage, what is the capital of {r.name}?", passage, \
            f"The capital of {r.name} is {r.capital}."
    for s in w.species:
        yield s.name, f"Describe the {s.name}.", "", f"The {s.name} is a {s.color} animal from {s.region} " \
                                                      f"that eats {s.diet}."


def _sinst(w: World, rng: random.Random):
    """S-NI: a task definition, an input, an output; several distinct tasks."""
    for d in w.diseases:
        yield d.name, "In this task you are given the name of a disease. Name the organ it affects and its " \
                      "standard treatment.", d.name, f"{d.name.capitalize()} affects the {d.organ} and is " \
                                                     f"treated with {d.drug}."
    for c in w.cases:
        yield c.name, "In this task you are given the name of a court case. State what the court held.", \
            c.name, f"In {c.name} the court held that {c.holding}."


def _uinst(w: World, rng: random.Random):
    """UnNI: a terse instruction applied to an input, a short answer."""
    for t in w.tools:
        yield t.name, "Name the material the given tool is made of.", t.name, f"It is made of {t.material}."
    for p in w.people:
        yield p.name, "Give the profession of the person.", p.name, f"{p.name} was a {p.profession}."


def _self_inst(w: World, rng: random.Random):
    """Self-Instruct user-oriented: practical requests with an instance input."""
    for a in w.activities:
        yield a.name, "Write the steps of the following activity, in order.", a.name, \
            f"First, {a.steps[0]}. Then {a.steps[1]}. Next, {a.steps[2]}. After that, {a.steps[3]}. " \
            f"Finally, {a.steps[4]}."
    for t in w.tools:
        yield t.name, "Explain what this tool is used for.", t.name, f"People use a {t.name} {t.purpose}."


def _vicuna(w: World, rng: random.Random):
    """Vicuna: open questions, no input."""
    for p in w.people:
        yield p.name, f"Who was {p.name}, and what are they remembered for?", "", \
            f"{p.name} was a {p.profession} from {p.city} who invented the {p.tool}."
    for r in w.regions:
        yield r.name, f"What would a traveller find in {r.name}?", "", \
            f"{r.name} has a {r.climate} climate, its capital is {r.capital}, and it exports {r.export}."


GENERATION_TASKS = {
    "dolly": _dolly,
    "sinst": _sinst,
    "uinst": _uinst,
    "self_inst": _self_inst,
    "vicuna": _vicuna,
}


def make_task(w: World, task: str, seed: int, test_fraction: float) -> dict[str, list[dict]]:
    """Train/test records for one task, split by entity key: `{query, choices, gold}` for a
    multiple-choice task, MiniLLM's `{instruction, input, output, prompt}` for a generation task."""
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
    splits: dict[str, list[dict]] = {"train": [], "test": [], **({"dev": []} if generation else {})}
    for key, *rest in items:
        if generation:
            instruction, inp, output = rest
            rec = {"key": key, "instruction": instruction, "input": inp, "output": output,
                   "prompt": alpaca_prompt(instruction, inp)}
        else:
            query, choices, gold = rest
            rec = {"key": key, "query": query, "choices": choices, "gold": gold}
        splits["test" if key in test_keys else "dev" if key in dev_keys else "train"].append(rec)
    return splits
