"""The experiment grid as plain Python: the table rows, every path the workflow writes, each
stage's config slice and which jobs share work.

`rules/*.smk` declare rules over one `Grid` built from the resolved config; what they compute
is computed here, unit-tested without Snakemake (tests/workflow/test_grid.py). Config slices are JSON
strings with sorted keys: Snakemake reruns a job when its slice changes, and only then.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from harness.io import TRAIN_LOG

NO_SOURCE = "none"  # the `{source}` wildcard of methods run without a source
# the `method` of a source's own evaluation records (zero-shot, and fine-tuned on each task)
SOURCE_BASE, SOURCE_SFT = "source", "source-sft"


class Row(NamedTuple):
    """One table row: a method run from a source (`none` without one), under a label."""

    method: str
    source: str
    label: str


def row_label(config: dict, row: dict) -> str:
    """The table label of a `methods` row: its `label`, else `name` or `name-<source label>`."""
    if "label" in row:
        return row["label"]
    src = row.get("source")
    return row["name"] if src is None else f"{row['name']}-{config['sources'][src].get('label', src)}"


def _method(config: dict, name: str) -> str:
    """The method a row runs: a variant identical to its family is its family (shared jobs)."""
    from harness.api.registry import same_method

    return same_method(name, config.get("method_options", {}))


def rows(config: dict) -> list[Row]:
    """Every row of the grid tables (`methods:`), in config order."""
    return [Row(_method(config, r["name"]), r.get("source", NO_SOURCE), row_label(config, r))
            for r in config["methods"]]


def row_by_label(table_rows: list[Row], label: str | None) -> Row:
    """The row labelled `label`, or the first for None (how `compare_to` keys pick a reference)."""
    return next(r for r in table_rows if label is None or r.label == label)


def reference_row(config: dict) -> Row:
    """The `methods` row the grid tables' paired differences are to: `compare_to`, else the first."""
    return row_by_label(rows(config), config.get("compare_to"))


def labelled_rows(config: dict, config_rows: list[dict], source: str | None = None) -> list[Row]:
    """Rows outside `methods:` (a report section's): each labelled by its `label`, else its
    method's registry label; from `source` when given, else its own (`none` without one). A
    variant identical to its family runs as its family (`_method`)."""
    from harness.api.registry import method_label

    return [Row(_method(config, r["name"]), source or r.get("source", NO_SOURCE),
                r.get("label") or method_label(r["name"])) for r in config_rows]


def curve_dirs(curves: list[list]) -> list[str]:
    """The pre-training folders whose logs `Grid.curves` names: what a loss-view report needs built."""
    return sorted({path.rsplit("/", 1)[0] for *_, path in curves})


class _Wildcards(dict):
    """`str.format_map` over these leaves every wildcard it is not given as Snakemake's `{name}`."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_STUDENT = "students/{method}/{source}/{shape}/seed{seed}"
# Every path the workflow writes, named once, relative to results/<profile>; the rules and the
# reports take theirs from here (`Grid.path`), with the wildcards they do not give left for Snakemake.
PATHS = {
    "world": "data/world",
    "world_task": "data/world/tasks/{task}",  # a generated task's splits, inside the world
    "corpus": "data/corpus",
    "tokenizer": "data/tokenizer",
    "tokens": "data/tokens.npy",
    "source_tokens": "data/tokens-{source}.npy",  # the corpus in a source's own tokenizer's ids
    "task_export": "data/tasks/{task}",
    "instructions": "data/instructions/{task}",
    "source": "sources/{source}",
    "artifact": "artifacts/{method}/{source}",
    "source_sft": "sources-sft/{source}/{task}",
    "source_eval": "sources-eval/{source}/{variant}/{task}.json",
    "student": _STUDENT,
    "pretrain": _STUDENT + "/{budget}/pretrain",
    "sft": _STUDENT + "/{budget}/sft/{task}",
    "eval": _STUDENT + "/{budget}/eval/{task}.json",  # after SFT
    "eval_zeroshot": _STUDENT + "/{budget}/eval/zeroshot/{task}.json",  # the pre-trained student
    "eval_paraphrase": _STUDENT + "/{budget}/eval/paraphrase/{task}.json",  # after SFT, held-out phrasing
    "init_eval": _STUDENT + "/init-eval/{task}.json",  # the untrained student
}
# Each job's log, relative to logs/<profile> and without `.log`; its benchmark file follows it
# (`Grid.benchmark_of`).
LOGS = {
    **{name: PATHS[name] for name in ("world", "corpus", "tokenizer", "task_export", "instructions", "source",
                                      "artifact", "source_sft", "pretrain", "sft")},
    "tokens": "data/tokens",
    "source_tokens": "data/tokens-{source}",
    "source_eval": "sources-eval/{source}/{variant}-multiple-choice",
    "source_eval_generation": "sources-eval/{source}/{variant}",
    "sft_group": _STUDENT + "/{budget}/sft/{kind}",  # one job fine-tunes (and evaluates) a kind of task
    "eval": _STUDENT + "/{budget}/eval",
    "eval_generation": _STUDENT + "/{budget}/eval_generation",
    "init_eval": _STUDENT + "/init-eval",
    "report": "reports/{report}",
    "fork_server": "fork-server",  # the run's warm process (harness/workflow/forkserver.py)
}


def as_json(**slice_: Any) -> str:
    """A job's config slice as Snakemake's params carry it, with the core code's fingerprint
    (`harness.io.core_code`): a change to either reruns the job."""
    from harness.io import core_code

    return json.dumps({**slice_, "code_core": core_code()}, sort_keys=True, separators=(",", ":"))


class Grid:
    """Paths, config slices and shared work of one resolved profile."""

    def __init__(self, config: dict):
        self.C = config
        self.profile = config["profile"]
        self.R = f"results/{self.profile}"
        self.L = f"logs/{self.profile}"
        self.B = f"benchmarks/{self.profile}"  # Snakemake's per-job timings (`python -m harness timings`)
        self.STUDENT = self.path("student")
        self.WORLD = self.path("world")
        self.TOKENIZER = self.path("tokenizer")
        self.TOKENS = self.path("tokens")
        self.budget = config["report_budget"]  # the budget the tables report
        self.shapes = list(config["shapes"])
        self.mc_tasks = list(config["tasks"])
        self.gen_tasks = list(config.get("generation_tasks", {}))
        self.rows = rows(config)
        self.reference = reference_row(config)  # the row every grid table's paired differences are to
        # the micro world's tasks also hold a `paraphrase` split: the test items in held-out words
        self.paraphrase = bool(self.mc_tasks) and all(config["tasks"][t]["kind"] == "generated"
                                                      for t in self.mc_tasks)

    # ------------------------------------------------------------ names and scheduling

    def job_resources(self, rule: str) -> dict:
        """What a rule's jobs ask of the scheduler (Snakemake's `mem_mb`, `runtime` in minutes, and
        `gpu`, which the SLURM executor plugin turns into a GPU request): the profile's
        `resources.<rule>` over `resources.default`. Every report rule asks for `report`, the one
        key the renderers share (rules/reports.smk)."""
        table = self.C.get("resources", {})
        return {**table.get("default", {}), **table.get(rule, {})}

    def path(self, name: str, **wildcards: Any) -> str:
        """The path `PATHS[name]` names, under results/<profile>, with `wildcards` filled in."""
        return f"{self.R}/" + PATHS[name].format_map(_Wildcards(wildcards))

    def log(self, name: str, **wildcards: Any) -> str:
        """The log `LOGS[name]` names, under logs/<profile>."""
        return f"{self.L}/" + LOGS[name].format_map(_Wildcards(wildcards)) + ".log"

    def benchmark_of(self, rule: str, log: str) -> str:
        """The job's Snakemake benchmark file (wall and CPU seconds, peak memory): under the rule's
        name, then its log's path (`python -m harness timings` groups by rule)."""
        return f"{self.B}/{rule}" + log[len(self.L):].removesuffix(".log") + ".tsv"

    # ------------------------------------------------------------ paths

    def corpus_input(self) -> str:
        return self.WORLD if self.C["corpus"]["kind"] == "world" else self.path("corpus")

    def corpus_file(self) -> str:
        return self.corpus_input() + "/corpus.txt"

    def domains_dir(self) -> str | None:
        """Where each corpus domain's text lies alone (Figure 4), or None: a corpus without domains."""
        corpus = self.C["corpus"]
        return self.corpus_input() + "/domains" if corpus["kind"] == "world" or corpus.get("domains") else None

    def task_data(self, task: str) -> str:
        """The output that holds `task`'s splits: the world (generated multiple-choice tasks), an
        lm-eval export, or a generation task's own directory (generated or read from files)."""
        if task in self.gen_tasks:
            return self.path("instructions", task=task)
        return self.WORLD if self.C["tasks"][task]["kind"] == "generated" else self.path("task_export", task=task)

    def task_path(self, task: str) -> str:
        """The directory of `task`'s split files (inside the world, for a generated task)."""
        return self.path("world_task", task=task) if self.task_data(task) == self.WORLD else self.task_data(task)

    def source_dir(self, source: str) -> str:
        return self.path("source", source=source)

    def tokens_for(self, source: str) -> str:
        """The token stream a source reads (extraction): the students', or, for a checkpoint with
        `tokenizer: own`, the corpus in its own tokenizer's ids."""
        own = self.C["sources"][source].get("tokenizer") == "own"
        return self.path("source_tokens", source=source) if own else self.TOKENS

    def student(self, method: str, source: str, shape: str, seed) -> str:
        return self.path("student", method=method, source=source, shape=shape, seed=seed)

    def pretrained(self, method: str, source: str, shape: str, seed, budget: str) -> str:
        """The checkpoint SFT starts from: the method's own, or the plain student's (Scratch's) when
        the method leaves initialisation and pre-training alone (it only adapts)."""
        from harness.api.registry import plain_method, shares_pretraining

        if shares_pretraining(method):
            method, source = plain_method(), NO_SOURCE
        return self.path("pretrain", method=method, source=source, shape=shape, seed=seed, budget=budget)

    def init_inputs(self, method: str, source: str) -> dict[str, str]:
        """What building a student reads: the tokenizer, the source, and the artifact of a method
        that extracts from it (once per source; every shape starts from it, and a composition
        whose extracting part keeps its own options shares that part's: `artifact_method`)."""
        from harness.api.registry import artifact_method, implements

        inputs = {"tokenizer": self.TOKENIZER}
        if source != NO_SOURCE:
            inputs["source"] = self.source_dir(source)
            if implements(method, "extract"):
                owner = artifact_method(method, self.C.get("method_options", {}))
                inputs["artifact"] = self.path("artifact", method=owner, source=source)
        return inputs

    def eval_files(self, table_rows: list[Row], shapes: list[str], budget: str, tasks: list[str],
                   stage: str = "sft", seeds: list[int] | None = None) -> list[str]:
        """Evaluation JSON of rows x shapes x seeds (the profile's unless given) x tasks; `stage`
        "zeroshot": the students before SFT, "paraphrase": the fine-tuned students on the held-out
        phrasing."""
        name = "eval" if stage == "sft" else f"eval_{stage}"
        return [self.path(name, method=m, source=s, shape=shape, seed=seed, budget=budget, task=t)
                for m, s, _ in table_rows for shape in shapes for seed in (seeds or self.C["seeds"]) for t in tasks]

    def source_evals(self, sources: list[str], tasks: list[str], variants=("base", "sft")) -> list[str]:
        """Evaluation JSON of sources: `base` zero-shot, `sft` fine-tuned on each task."""
        return [self.path("source_eval", source=s, variant=v, task=t) for s in sources for v in variants for t in tasks]

    def source_labels(self, sources: list[str]) -> list[list[str]]:
        return [[s, self.C["sources"][s].get("label", s)] for s in sources]

    def generation_models(self, method: str, source: str, shape: str, seed, budget: str) -> list[str]:
        """The fine-tuned model that scores each generation task (tasks may share one: `sft_task`)."""
        return [self.path("sft", method=method, source=source, shape=shape, seed=seed, budget=budget,
                          task=self.sft_task(t)) for t in self.gen_tasks]

    # ------------------------------------------------------------ shared work

    def sft_task(self, task: str) -> str:
        """The generation task whose fine-tuned model scores `task`: tasks that train on the same
        train and dev files share the first one's SFT job (MiniLLM trains once, on Dolly, and
        scores all five sets with that model: one job where five would repeat it)."""
        tasks = self.C["generation_tasks"]
        files = (tasks[task].get("train"), tasks[task].get("dev"))
        if files == (None, None):
            return task
        return next(t for t, s in tasks.items() if (s.get("train"), s.get("dev")) == files)

    def sft_groups(self) -> dict[str, list[str]] | None:
        """The tasks one SFT job fine-tunes a student on. `sft_jobs: task` (the paper profile): each
        task its own job, for a cluster (None). `student` (micro): one job per student and task
        kind, which then evaluates it too, since a micro task trains in ~1 s and a process starts
        in ~5 s; a row that needs fewer tasks of a kind than the profile lists (a PKT subset)
        then trains them all."""
        if self.C.get("sft_jobs", "task") == "task":
            return None
        gen = list(dict.fromkeys(self.sft_task(t) for t in self.gen_tasks))
        return {kind: tasks for kind, tasks in (("multiple_choice", self.mc_tasks), ("generation", gen)) if tasks}

    # ------------------------------------------------------------ config slices

    def method_cfg(self, method: str) -> dict:
        """The slice every method stage sees: its family's options under its own and a fingerprint
        of its code, so that changing one method's options or editing its file reruns that
        method's jobs and no others."""
        from harness.api.registry import method_code, method_options

        return {"method": method, "method_options": method_options(self.C.get("method_options", {}), method),
                "code": method_code(method)}

    def curves(self, table_rows: list[Row], shapes: list[str], budget: str,
               seeds: list[int] | None = None) -> list[list]:
        """[method, source, shape, seed, train_log.jsonl] of each row's pre-training: its held-out
        loss curve (reports/loss_view.py); none without a `heldout` section."""
        if "heldout" not in self.C:
            return []
        return [[m, s, shape, seed, self.pretrained(m, s, shape, seed, budget) + "/" + TRAIN_LOG]
                for m, s, _ in table_rows for shape in shapes for seed in (seeds or self.C["seeds"])]

    def heldout_cfg(self) -> dict:
        """The held-out tail of the token stream (`heldout:`), in the students' windows."""
        return {**self.C["heldout"], "seq_len": self.C["pretrain"]["seq_len"]} if "heldout" in self.C else {}

    def tokens_cfg(self) -> str:
        """The token stream's slice: the corpus's per-domain quota, if it sets one."""
        quota = (self.C.get("corpus") or {}).get("quota")
        return as_json(**({"quota": quota} if quota else {}))

    def source_cfg(self, source: str) -> str:
        C = self.C
        return as_json(source=C["sources"][source], seed=C["source_training"].get("seed", 0),
                       training=C["source_training"], heldout=self.heldout_cfg(),
                       world_passes=C["world"]["repeats"] if "world" in C else None)

    def extract_cfg(self, method: str) -> str:
        return as_json(**self.method_cfg(method), seed=0, seq_len=self.C["seq_len"], heldout=self.heldout_cfg())

    def student_cfg(self, method: str, shape: str) -> dict:
        """What building a student reads (harness.stages.build.build_student): its method and shape."""
        return {**self.method_cfg(method), "shape_name": shape, "shape": self.C["shapes"][shape],
                "seq_len": self.C["seq_len"]}

    def pretrain_cfg(self, method: str, shape: str, budget: str) -> str:
        """A pre-training job's slice. With `pretrain.budgets: checkpoints` every budget is the
        checkpoint of one run as long as the largest budget (its schedule's `horizon`)."""
        horizon = {}
        if self.C["pretrain"].get("budgets", "separate") == "checkpoints":
            horizon = {"horizon": max(b["tokens"] for b in self.C["budgets"].values())}
        return as_json(**self.student_cfg(method, shape), budget_name=budget,
                       budget=self.C["budgets"][budget]["tokens"], pretrain=self.C["pretrain"],
                       heldout=self.heldout_cfg(), **horizon)

    def untrained_eval_cfg(self, method: str, source: str, shape: str, seed) -> str:
        return as_json(**self.student_cfg(method, shape), source=source, seed=int(seed), tasks=self.mc_tasks,
                       eval=self.C["eval"], stage="untrained")

    def sft_slice(self, method: str | None, task: str) -> dict:
        """The task part of an SFT job's config (a student's or, with method None, a source's,
        which runs as `source_sft` says: a 7B source's AdamW state needs several GPUs); zero epochs
        for a method's no-SFT variant."""
        from harness.api.registry import method_spec

        generation = task in self.gen_tasks
        sft = self.C["sft_generation"] if generation else self.C["sft"]
        if method is None:
            sft = {**sft, **self.C.get("source_sft", {})}
        elif not method_spec(method).finetune:
            sft = {**sft, "epochs": 0}
        return {"task": task, **({"task_kind": "generation"} if generation else {}), "sft": sft}

    def sft_cfg(self, method: str, tasks: list[str]) -> str:
        """An SFT job's config: the method's slice and one task slice per task it fine-tunes."""
        return as_json(**self.method_cfg(method), tasks=[self.sft_slice(method, t) for t in tasks])

    def source_sft_cfg(self, task: str) -> str:
        return as_json(tasks=[self.sft_slice(None, task)])

    def _student_ids(self, method: str, source: str, shape: str, budget: str, seed) -> dict:
        return {"method": method, "source": source, "shape_name": shape, "budget_name": budget, "seed": int(seed)}

    def eval_cfg(self, method: str, source: str, shape: str, budget: str, seed) -> str:
        return as_json(**self._student_ids(method, source, shape, budget, seed), tasks=self.mc_tasks,
                       eval=self.C["eval"])

    def eval_generation_cfg(self, method: str, source: str, shape: str, budget: str, seed) -> str:
        return as_json(**self._student_ids(method, source, shape, budget, seed), tasks=self.gen_tasks,
                       generation=self.C["generation"])

    def source_eval_cfg(self, source: str, variant: str, generation: bool = False) -> str:
        """A source's own evaluation: `variant` "base" (zero-shot) or "sft" (fine-tuned per task)."""
        ids = {"method": SOURCE_BASE if variant == "base" else SOURCE_SFT, "source": source,
               "shape_name": source, "seed": 0}
        if generation:
            return as_json(**ids, tasks=self.gen_tasks, generation=self.C["generation"])
        return as_json(**ids, tasks=self.mc_tasks, eval=self.C["eval"],
                       stage="zeroshot" if variant == "base" else "sft")

    def export_task_cfg(self, task: str) -> str:
        return as_json(task=task, spec=self.C["tasks"][task])

    def instruction_task_cfg(self, task: str) -> str:
        spec = self.C["generation_tasks"][task]
        return as_json(task=task, spec=spec, world=self.C["world"] if spec["kind"] == "generated" else None)

    def report_cfg(self, table_rows: list[Row], shapes: list[str], budget: str, tasks: str = "tasks",
                   seeds: list[int] | None = None, **extra: Any) -> str:
        """A renderer's slice; `tasks` names the config section of the table's columns."""
        C = self.C
        return as_json(profile=self.profile, seeds=seeds or C["seeds"], budget=budget,
                       budget_paper=C["budgets"][budget].get("paper"), budget_tokens=C["budgets"][budget]["tokens"], rows=[list(r) for r in table_rows],
                       # lists, not mappings: the JSON is key-sorted and the tables keep the config's order
                       shapes=[[name, C["shapes"][name]] for name in shapes],
                       tasks=[[name, spec["label"]] for name, spec in C.get(tasks, {}).items()],
                       reference=list(self.reference), statistics=C.get("statistics", {}), **extra)
