# Evaluation of every fine-tuned student on its task's test split.


def _eval_inputs(wildcards):
    return {"model": STUDENT.format(**wildcards) + f"/{wildcards.budget}/sft/{wildcards.task}",
            "task": task_input(wildcards)}


rule eval:
    input:
        unpack(_eval_inputs),
    output:
        STUDENT + "/{budget}/eval/{task}.json",
    log:
        L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/eval/{task}.log",
    params:
        cfg=eval_cfg,
        task=task_dir,
    threads: 1
    shell:
        harness("eval", "--model {input.model} --task {params.task} --out {output}")
