# Evaluation: each task's fine-tuned student scored on that task's test split, and the pre-trained
# student on every task before SFT (zero-shot); one JSON per task and stage, with per-item results.
# A student's tasks share one process (lm-eval's start-up costs more than a micro evaluation); with
# `sft_jobs: student` that process is the fine-tuning job's own (rules/students.smk).

EVAL_OUTPUTS = {
    "sft": [G.path("eval", task=task) for task in MC_TASKS],
    "zeroshot": [G.path("eval_zeroshot", task=task) for task in MC_TASKS],
    "paraphrase": [G.path("eval_paraphrase", task=task) for task in MC_TASKS] if G.paraphrase else [],
}
EVAL_GENERATION_OUTPUTS = {"evals": [G.path("eval", task=task) for task in GEN_TASKS]}


def eval_args(models):
    """The `eval` stage's arguments: the fine-tuned students `models` (a placeholder, in MC_TASKS'
    order) on their tasks, and the pre-trained student on every task (zero-shot)."""
    return ("--models " + models + " --tasks {params.scored} --outs {output.sft}",
            "--pretrained {input.pretrained} --zeroshot-outs {output.zeroshot}",
            "--paraphrase-outs {output.paraphrase}" if G.paraphrase else "")


def eval_generation_args(models):
    return ("--models " + models + " --tasks {params.scored} --outs {output.evals}",)


def eval_cfg(w):
    return G.eval_cfg(w.method, w.source, w.shape, w.budget, w.seed)


def eval_generation_cfg(w):
    return G.eval_generation_cfg(w.method, w.source, w.shape, w.budget, w.seed)


def generation_models(w):
    return G.generation_models(w.method, w.source, w.shape, w.seed, w.budget)


if G.sft_groups() is None:  # one job per task fine-tunes: evaluation is a job of its own
    rule eval:
        input:
            models=lambda w: [G.path("sft", **dict(w.items()), task=t) for t in MC_TASKS],
            tasks=sorted({G.task_data(t) for t in MC_TASKS}),
            pretrained=pretrained,
        output:
            **EVAL_OUTPUTS,
        log:
            G.log("eval"),
        benchmark:
            G.benchmark_of("eval", G.log("eval")),
        params:
            cfg=eval_cfg,
            scored=[G.task_path(t) for t in MC_TASKS],
        threads: 1
        resources:
            **G.job_resources("eval"),
        shell:
            harness("eval", *eval_args("{input.models}"))

    if GEN_TASKS:
        rule eval_generation:
            input:
                models=generation_models,
                tasks=[G.task_data(t) for t in GEN_TASKS],
            output:
                **EVAL_GENERATION_OUTPUTS,
            log:
                G.log("eval_generation"),
            benchmark:
                G.benchmark_of("eval_generation", G.log("eval_generation")),
            params:
                cfg=eval_generation_cfg,
                scored=[G.task_data(t) for t in GEN_TASKS],
            threads: C.get("threads", 1)
            resources:
                **G.job_resources("eval_generation"),
            shell:
                harness("eval-generation", *eval_generation_args("{input.models}"))
