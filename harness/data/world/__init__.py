"""The micro world: generated entities, a five-domain corpus about them, and tasks
whose answers need that world's knowledge and nothing else.

Everything derives from one integer seed through `random.Random`, so the same
seed gives byte-identical files on every machine. No third-party text is used.

The design follows docs/signal.md (a benchmark must be able to see a model
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

from harness.data.world.generate import DOMAINS, World, make_corpus, make_world  # noqa: F401
from harness.data.world.tasks import GENERATION_TASKS, N_CHOICES, TASKS, make_task  # noqa: F401

__all__ = ["DOMAINS", "GENERATION_TASKS", "N_CHOICES", "TASKS", "World", "make_corpus", "make_task", "make_world"]
