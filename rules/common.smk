# The resolved config and the grid every rule is declared over (harness/workflow/grid.py: paths, config
# slices, shared work, all unit-tested without Snakemake). Rules contain no logic of their own.
import os
import re
import sys

import harness
from harness.workflow import forkserver, plan
from harness.workflow.config import resolve
from harness.errors import HarnessError
from harness.workflow.grid import NO_SOURCE, Grid, as_json
from harness.workflow.report import planned_methods
from harness.workflow.commands import PYTHON_ENV, stage_command

if os.path.dirname(os.path.dirname(os.path.realpath(harness.__file__))) != os.path.realpath(workflow.basedir):
    sys.exit(f"error: this Snakefile's checkout is {workflow.basedir}, but its rules imported harness from "
             f"{os.path.dirname(harness.__file__)}; run the Snakefile of that checkout, or remove it from PYTHONPATH")

try:
    C = resolve(config)
except HarnessError as e:
    sys.exit(f"error: {e}")

G = Grid(C)
if (_misfit := plan.refusal(C)) is not None:  # before the first job is submitted
    sys.exit(f"error: {_misfit}")
MC_TASKS, GEN_TASKS = G.mc_tasks, G.gen_tasks
os.environ[PYTHON_ENV] = sys.executable  # jobs run the interpreter running Snakemake (harness/workflow/commands.py)


def _alternatives(names):
    return "|".join(re.escape(str(n)) for n in names)


wildcard_constraints:
    method=_alternatives(planned_methods(G)),
    source=_alternatives([*C["sources"], NO_SOURCE]),
    shape=_alternatives(C["shapes"]),
    budget=_alternatives(C["budgets"]),
    task=_alternatives([*C["tasks"], *C.get("generation_tasks", {})]),
    seed=r"\d+",


harness = stage_command  # a rule's `shell:`: harness("pretrain", "--out {output}", ...)


def source_input(w):
    """The source a student stage needs ({} for methods run without one)."""
    return {} if w.source == NO_SOURCE else {"source": G.source_dir(w.source)}


def source_arg(w, input):
    return input.get("source", NO_SOURCE)


def artifact_arg(w, input):
    return input.get("artifact", "none")


def pretrained(w):
    return G.pretrained(w.method, w.source, w.shape, w.seed, w.budget)
