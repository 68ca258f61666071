# Config validation and the helpers every rule uses: paths, per-stage config
# slices, wildcard constraints. Rules contain no logic beyond calling these.
import json
import re
import sys

from harness.config import (NO_SOURCE, SOURCE_BASE, SOURCE_SFT, ablation_rows, pkt_extra_reference_rows, pkt_reference_row, pkt_rows,
                            reference_row, resolve, rows, signal_controls)
from harness.errors import HarnessError
from harness.registry import implements, method_options, method_spec, plain_method, shares_pretraining
from harness.workflow import stage_command

try:
    C = resolve(config)
except HarnessError as e:
    sys.exit(f"error: {e}")

PROFILE = C["profile"]
R = f"results/{PROFILE}"
L = f"logs/{PROFILE}"
B = f"benchmarks/{PROFILE}"  # Snakemake's per-job timings (`python -m harness timings` sums them)
PY = sys.executable  # the interpreter running Snakemake, so jobs see the same environment
STUDENT = R + "/students/{method}/{source}/{shape}/seed{seed}"


def _alternatives(names):
    return "|".join(re.escape(str(n)) for n in names)


ABLATIONS = {report: ablation_rows(C, report) for report in ("table4", "table5", "fig4")} if "ablation" in C else {}
SIGNAL_CONTROLS = signal_controls(C) if "signal" in C else {}


wildcard_constraints:
    method=_alternatives({m for m, _, _ in rows(C) + pkt_rows(C) + [r for rs in ABLATIONS.values() for r in rs]
                          + list(SIGNAL_CONTROLS.values())}),
    source=_alternatives([*C["sources"], NO_SOURCE]),
    shape=_alternatives(C["shapes"]),
    budget=_alternatives(C["budgets"]),
    task=_alternatives([*C["tasks"], *C.get("generation_tasks", {})]),
    seed=r"\d+",


REPORT_RULES = ("table1", "table2", "table3", "table4", "table5", "table_pkt", "fig2", "fig3", "fig4",
                "table_efficiency", "fig_efficiency", "signal")


def job_resources(rule):
    """What a rule's jobs ask of the scheduler (Snakemake's standard `mem_mb`, `runtime` in
    minutes, and `gpu`, the count the SLURM executor plugin turns into a GPU request): the
    profile's `resources.<rule>` over `resources.default`; the renderers share `report`."""
    table = C.get("resources", {})
    return {**table.get("default", {}), **table.get("report" if rule in REPORT_RULES else rule, {})}


def benchmark_of(rule, log):
    """The job's Snakemake benchmark file (wall seconds, CPU seconds, peak memory): under the
    rule's name, then its log's path (`python -m harness timings` groups by rule)."""
    return f"{B}/{rule}" + log[len(L):].removesuffix(".log") + ".tsv"


def harness(stage, *args, then=()):
    return stage_command(PY, stage, *args, then=then)


def as_json(**slice_):
    return json.dumps(slice_, sort_keys=True, separators=(",", ":"))


def method_cfg(method):
    """The config slice every method stage sees: its family's options under its own, so that
    changing one method's options reruns that method's jobs and no others."""
    return {"method": method, "method_options": method_options(C.get("method_options", {}), method)}


# ---------------------------------------------------------------- data paths

WORLD = R + "/data/world"
TOKENIZER = R + "/data/tokenizer"
TOKENS = R + "/data/tokens.npy"


def corpus_input():
    return WORLD if C["corpus"]["kind"] == "world" else R + "/data/corpus"


def corpus_file():
    return corpus_input() + "/corpus.txt"


MC_TASKS = list(C["tasks"])
GEN_TASKS = list(C.get("generation_tasks", {}))


def task_data(task):
    """The output that holds `task`'s splits: the world (generated multiple-choice tasks), an
    lm-eval export, or a generation task's own directory (generated or read from files)."""
    if task in GEN_TASKS:
        return R + f"/data/instructions/{task}"
    return WORLD if C["tasks"][task]["kind"] == "generated" else R + f"/data/tasks/{task}"


def task_path(task):
    return WORLD + f"/tasks/{task}" if task_data(task) == WORLD else task_data(task)


def task_input(wildcards):
    return task_data(wildcards.task)


def task_dir(wildcards):
    return task_path(wildcards.task)


def source_input(wildcards):
    """The source a student stage needs ({} for methods run without one)."""
    return {} if wildcards.source == NO_SOURCE else {"source": R + f"/sources/{wildcards.source}"}


def source_arg(wildcards, input):
    return input.get("source", NO_SOURCE)


# ---------------------------------------------------------------- targets

def eval_files(table_rows, shapes, budget, tasks, stage="sft"):
    """Evaluation JSON of rows x shapes x seeds x tasks; `stage` "zeroshot": the students before SFT,
    "paraphrase": the fine-tuned students on the held-out phrasing."""
    folder = "eval" if stage == "sft" else f"eval/{stage}"
    return [R + f"/students/{m}/{s}/{shape}/seed{seed}/{budget}/{folder}/{t}.json"
            for m, s, _ in table_rows for shape in shapes for seed in C["seeds"] for t in tasks]


REFERENCE = reference_row(C)  # the row every grid table's paired differences are to


def report_cfg(table_rows, shapes, budget, tasks="tasks"):
    """The renderer's slice; `tasks` names the config section of the table's columns."""
    return as_json(profile=PROFILE, seeds=C["seeds"], budget=budget, budget_paper=C["budgets"][budget].get("paper"),
                   budget_tokens=C["budgets"][budget]["tokens"], rows=[list(r) for r in table_rows],
                   # lists, not mappings: the JSON is key-sorted and the tables keep the config's order
                   shapes=[[name, C["shapes"][name]] for name in shapes],
                   tasks=[[name, spec["label"]] for name, spec in C.get(tasks, {}).items()],
                   reference=list(REFERENCE), statistics=C.get("statistics", {}))


# ---------------------------------------------------------------- per-rule config slices

def export_task_cfg(wildcards):
    return as_json(task=wildcards.task, spec=C["tasks"][wildcards.task])


def heldout_cfg():
    """The held-out tail of the token stream (`heldout:`), in the students' windows."""
    return {**C["heldout"], "seq_len": C["pretrain"]["seq_len"]} if "heldout" in C else {}


def extract_cfg(wildcards):
    return as_json(**method_cfg(wildcards.method), seed=0, seq_len=C["seq_len"], heldout=heldout_cfg())


def student_cfg(wildcards):
    """What building a student reads (harness.stages.build_student): its method and shape."""
    return {**method_cfg(wildcards.method), "shape_name": wildcards.shape, "shape": C["shapes"][wildcards.shape],
            "seq_len": C["seq_len"]}


def pretrain_cfg(wildcards):
    return as_json(**student_cfg(wildcards), budget_name=wildcards.budget,
                   budget=C["budgets"][wildcards.budget]["tokens"], pretrain=C["pretrain"], heldout=heldout_cfg())


def untrained_eval_cfg(wildcards):
    return as_json(**student_cfg(wildcards), source=wildcards.source, seed=int(wildcards.seed), tasks=MC_TASKS,
                   eval=C["eval"], stage="untrained")


def sft_settings(method, task):
    """The SFT section a task's fine-tuning uses; zero epochs for a method's no-SFT variant."""
    sft = C["sft_generation"] if task in GEN_TASKS else C["sft"]
    return sft if method is None or method_spec(method).finetune else {**sft, "epochs": 0}


def sft_task(task):
    """The generation task whose fine-tuned model scores `task`: tasks that train on the same
    train and dev files share the first one's SFT job (MiniLLM trains once, on Dolly, and
    scores all five sets with that model: one job where five would repeat it)."""
    spec = C["generation_tasks"][task]
    files = (spec.get("train"), spec.get("dev"))
    if files == (None, None):
        return task
    return next(t for t, s in C["generation_tasks"].items() if (s.get("train"), s.get("dev")) == files)


def sft_slice(method, task):
    """The task part of an SFT job's config (a student's or, with method None, a source's,
    which runs as `source_sft` says: a 7B source's AdamW state needs several GPUs)."""
    kind = {"task_kind": "generation"} if task in GEN_TASKS else {}
    sft = sft_settings(method, task)
    if method is None:
        sft = {**sft, **C.get("source_sft", {})}
    return {"task": task, **kind, "sft": sft}


def sft_cfg(method, tasks):
    """An SFT job's config: the method's slice and one task slice per task it fine-tunes."""
    return as_json(**method_cfg(method), tasks=[sft_slice(method, t) for t in tasks])


def sft_groups():
    """The tasks one SFT job fine-tunes a student on. `sft_jobs: task` (the paper profile): each
    task its own job, for a cluster. `student` (micro): one job per student and task kind, since
    a micro task trains in ~1 s and a process starts in ~5 s; a row that needs fewer tasks of a
    kind than the profile lists (a PKT subset) then trains them all."""
    if C.get("sft_jobs", "task") == "task":
        return None
    gen = list(dict.fromkeys(sft_task(t) for t in GEN_TASKS))
    return {kind: tasks for kind, tasks in (("multiple_choice", MC_TASKS), ("generation", gen)) if tasks}


def eval_cfg(wildcards):
    return as_json(method=wildcards.method, source=wildcards.source, shape_name=wildcards.shape,
                   budget_name=wildcards.budget, seed=int(wildcards.seed), tasks=MC_TASKS, eval=C["eval"])


def eval_generation_cfg(wildcards):
    return as_json(method=wildcards.method, source=wildcards.source, shape_name=wildcards.shape,
                   budget_name=wildcards.budget, seed=int(wildcards.seed), tasks=GEN_TASKS,
                   generation=C["generation"])


def instruction_task_cfg(wildcards):
    spec = C["generation_tasks"][wildcards.task]
    return as_json(task=wildcards.task, spec=spec, world=C["world"] if spec["kind"] == "generated" else None)
