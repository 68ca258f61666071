# Evaluation: one job per student and budget scores each task's fine-tuned
# model on that task's test split, and the pre-trained student on every task
# before SFT (zero-shot); lm-eval's start-up costs more than a micro evaluation,
# so the tasks share one process. One JSON per task and stage, with per-item results.


def _eval_inputs(wildcards):
    student = STUDENT.format(**wildcards) + f"/{wildcards.budget}"
    return {"models": [f"{student}/sft/{t}" for t in MC_TASKS], "tasks": sorted({task_data(t) for t in MC_TASKS}),
            "pretrained": _pretrained(wildcards)}


def _task_paths(wildcards):
    return [task_path(t) for t in MC_TASKS]


# The micro world's tasks also hold a `paraphrase` split: the test items in held-out words.
PARAPHRASE = bool(MC_TASKS) and all(C["tasks"][t]["kind"] == "generated" for t in MC_TASKS)


rule eval:
    input:
        unpack(_eval_inputs),
    output:
        sft=[STUDENT + f"/{{budget}}/eval/{task}.json" for task in MC_TASKS],
        zeroshot=[STUDENT + f"/{{budget}}/eval/zeroshot/{task}.json" for task in MC_TASKS],
        paraphrase=[STUDENT + f"/{{budget}}/eval/paraphrase/{task}.json" for task in MC_TASKS] if PARAPHRASE else [],
    log:
        L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval.log",
    params:
        cfg=eval_cfg,
        tasks=_task_paths,
    threads: 1
    resources:
        **job_resources("eval"),
    shell:
        harness("eval", "--models {input.models} --tasks {params.tasks} --outs {output.sft}",
                "--pretrained {input.pretrained} --zeroshot-outs {output.zeroshot}",
                "--paraphrase-outs {output.paraphrase}" if PARAPHRASE else "")


# The untrained student (its initial weights, before pre-training) on every task: the signal
# report's floor (A1: an untrained model must score chance).
rule init_eval:
    input:
        init=STUDENT + "/init",
        tasks=sorted({task_data(t) for t in MC_TASKS}),
    output:
        [STUDENT + f"/init-eval/{task}.json" for task in MC_TASKS],
    log:
        L + "/students/{method}/{source}/{shape}/seed{seed}/init-eval.log",
    params:
        cfg=lambda w: as_json(method=w.method, source=w.source, shape_name=w.shape, seed=int(w.seed),
                              tasks=MC_TASKS, eval=C["eval"], stage="untrained"),
        tasks=_task_paths,
        models=lambda w, input: [input.init] * len(MC_TASKS),
    threads: 1
    resources:
        **job_resources("eval"),
    shell:
        harness("eval", "--models {params.models} --tasks {params.tasks} --outs {output}")


# Generation tasks (Rouge-L): one job per student and budget, every generation task.
if GEN_TASKS:
    def _eval_generation_inputs(wildcards):
        student = STUDENT.format(**wildcards) + f"/{wildcards.budget}"
        return {"models": [f"{student}/sft/{sft_task(t)}" for t in GEN_TASKS],
                "tasks": [task_data(t) for t in GEN_TASKS]}


    rule eval_generation:
        input:
            unpack(_eval_generation_inputs),
        output:
            [STUDENT + f"/{{budget}}/eval/{task}.json" for task in GEN_TASKS],
        log:
            L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval_generation.log",
        params:
            cfg=eval_generation_cfg,
        threads: C.get("threads", 1)
        resources:
            **job_resources("eval_generation"),
        shell:
            harness("eval-generation", "--models {input.models} --tasks {input.tasks} --outs {output}")
