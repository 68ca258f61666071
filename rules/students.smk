# Students: pre-training (per shape, seed and budget; the job builds the student first, from the
# method's artifact or at random), then adaptation + SFT (per task, or per student: `sft_jobs`).
# {source} is `none` for methods without one.


rule pretrain:
    input:
        unpack(lambda w: {**G.init_inputs(w.method, w.source), "tokens": G.TOKENS}),
    output:
        directory(G.path("pretrain")),
    log:
        G.log("pretrain"),
    benchmark:
        G.benchmark_of("pretrain", G.log("pretrain")),
    params:
        cfg=lambda w: G.pretrain_cfg(w.method, w.shape, w.budget),
        source=source_arg,
        artifact=artifact_arg,
    threads: C.get("threads", 1)
    resources:
        **G.job_resources("pretrain"),
    shell:
        harness("pretrain", "--tokenizer {input.tokenizer} --artifact {params.artifact} --tokens {input.tokens}",
                "--seed {wildcards.seed} --source {params.source} --out {output}")


def _sft_inputs(w, tasks):
    return {"pretrained": pretrained(w), "tasks": sorted({G.task_data(t) for t in tasks}), **source_input(w)}


SFT_COMMAND = ("--pretrained {input.pretrained} --task {params.task} --seed {wildcards.seed} --source {params.source}",
               "--out {output.models}")


def _sft_rule(name, tasks, models, log, evaluation=None):
    """One SFT job: `tasks` a fixed list, or a function of the wildcards (one task per job).
    `evaluation` (`sft_jobs: student`): the evaluation the same process runs next, as (its stage
    and arguments, its config function, its outputs, the tasks it scores, the models that score
    them)."""
    tasks_of = tasks if callable(tasks) else lambda w: tasks
    scored = evaluation[3] if evaluation else []

    rule:
        name: name
        input:
            unpack(lambda w: _sft_inputs(w, [*tasks_of(w), *scored])),
        output:
            models=models,
            **(evaluation[2] if evaluation else {}),
        log:
            log,
        benchmark:
            G.benchmark_of(name, log),
        params:
            cfg=lambda w: G.sft_cfg(w.method, tasks_of(w)),
            eval_cfg=evaluation[1] if evaluation else "",
            source=source_arg,
            task=lambda w: [G.task_path(t) for t in tasks_of(w)],
            scored=[G.task_path(t) for t in scored],
            scored_models=evaluation[4] if evaluation else [],
        threads: C.get("threads", 1)
        resources:
            **G.job_resources("sft"),
        shell:
            harness("sft", *SFT_COMMAND, then=[evaluation[0]] if evaluation else ())


SFT_GROUPS = G.sft_groups()
if SFT_GROUPS is None:
    _sft_rule("sft", lambda w: [w.task], directory(G.path("sft")),
              G.log("sft"))
else:
    # a student's fine-tuning and its evaluation in one process: on micro each takes about a
    # second, and each process would start in about five
    for _kind, _tasks in SFT_GROUPS.items():
        _student_log = G.log("sft_group", kind=_kind)
        _models = [directory(G.path("sft", task=t)) for t in _tasks]
        if _kind == "multiple_choice":
            _sft_rule("sft", _tasks, _models, _student_log,
                      (("eval", "eval_cfg", *eval_args("{params.scored_models}")), eval_cfg, EVAL_OUTPUTS, MC_TASKS,
                       lambda w, output: output.models))
        else:
            _sft_rule("sft_generation", _tasks, _models, _student_log,
                      (("eval-generation", "eval_cfg", *eval_generation_args("{params.scored_models}")),
                       eval_generation_cfg, EVAL_GENERATION_OUTPUTS, GEN_TASKS, generation_models))


# The untrained student (built in the job, as pre-training builds it) on every task: the signal
# report's floor (A1: an untrained model must score chance).
rule init_eval:
    input:
        unpack(lambda w: {**G.init_inputs(w.method, w.source), "tasks": sorted({G.task_data(t) for t in MC_TASKS})}),
    output:
        [G.path("init_eval", task=task) for task in MC_TASKS],
    log:
        G.log("init_eval"),
    benchmark:
        G.benchmark_of("init_eval", G.log("init_eval")),
    params:
        cfg=lambda w: G.untrained_eval_cfg(w.method, w.source, w.shape, w.seed),
        tasks=[G.task_path(t) for t in MC_TASKS],
        source=source_arg,
        artifact=artifact_arg,
    threads: 1
    resources:
        **G.job_resources("eval"),
    shell:
        harness("eval-untrained", "--tokenizer {input.tokenizer} --seed {wildcards.seed} --source {params.source}",
                "--artifact {params.artifact} --tasks {params.tasks} --outs {output}")
