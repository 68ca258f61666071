# Evaluation: each task's fine-tuned student scored on that task's test split, and the pre-trained
# student on every task before SFT (zero-shot); one JSON per task and stage, with per-item results.
# A student's tasks share one process (lm-eval's start-up costs more than a micro evaluation); with
# `sft_jobs: student` that process is the fine-tuning job's own (rules/students.smk).

# The micro world's tasks also hold a `paraphrase` split: the test items in held-out words.
PARAPHRASE = bool(MC_TASKS) and all(C["tasks"][t]["kind"] == "generated" for t in MC_TASKS)

EVAL_OUTPUTS = {
    "sft": [STUDENT + f"/{{budget}}/eval/{task}.json" for task in MC_TASKS],
    "zeroshot": [STUDENT + f"/{{budget}}/eval/zeroshot/{task}.json" for task in MC_TASKS],
    "paraphrase": [STUDENT + f"/{{budget}}/eval/paraphrase/{task}.json" for task in MC_TASKS] if PARAPHRASE else [],
}
EVAL_GENERATION_OUTPUTS = {"evals": [STUDENT + f"/{{budget}}/eval/{task}.json" for task in GEN_TASKS]}


def eval_args(models):
    """The `eval` stage's arguments: the fine-tuned students `models` (a placeholder, in MC_TASKS'
    order) on their tasks, and the pre-trained student on every task (zero-shot)."""
    return ("--models " + models + " --tasks {params.scored} --outs {output.sft}",
            "--pretrained {input.pretrained} --zeroshot-outs {output.zeroshot}",
            "--paraphrase-outs {output.paraphrase}" if PARAPHRASE else "")


def eval_generation_args(models):
    return ("--models " + models + " --tasks {params.scored} --outs {output.evals}",)


def generation_models(wildcards):
    """The fine-tuned model that scores each generation task (tasks may share one: `sft_task`)."""
    student = STUDENT.format(**wildcards) + f"/{wildcards.budget}"
    return [f"{student}/sft/{sft_task(t)}" for t in GEN_TASKS]


def _eval_inputs(wildcards):
    student = STUDENT.format(**wildcards) + f"/{wildcards.budget}"
    return {"models": [f"{student}/sft/{t}" for t in MC_TASKS], "tasks": sorted({task_data(t) for t in MC_TASKS}),
            "pretrained": _pretrained(wildcards)}


def _task_paths(wildcards):
    return [task_path(t) for t in MC_TASKS]


if sft_groups() is None:  # one job per task fine-tunes: evaluation is a job of its own
    rule eval:
        input:
            unpack(_eval_inputs),
        output:
            **EVAL_OUTPUTS,
        log:
            L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval.log",
        benchmark:
            benchmark_of("eval", L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval.log"),
        params:
            cfg=eval_cfg,
            scored=_task_paths,
        threads: 1
        resources:
            **job_resources("eval"),
        shell:
            harness("eval", *eval_args("{input.models}"))

    if GEN_TASKS:
        rule eval_generation:
            input:
                models=generation_models,
                tasks=[task_data(t) for t in GEN_TASKS],
            output:
                **EVAL_GENERATION_OUTPUTS,
            log:
                L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval_generation.log",
            benchmark:
                benchmark_of("eval_generation",
                             L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval_generation.log"),
            params:
                cfg=eval_generation_cfg,
                scored=[task_data(t) for t in GEN_TASKS],
            threads: C.get("threads", 1)
            resources:
                **job_resources("eval_generation"),
            shell:
                harness("eval-generation", *eval_generation_args("{input.models}"))
