# Students: initialisation (once per shape and seed), pre-training (per budget),
# adaptation + SFT (per task). {source} is `none` for methods without one.


def _init_inputs(wildcards):
    """A method that extracts from its source starts each student from that one artifact."""
    inputs = {"tokenizer": TOKENIZER, **source_input(wildcards)}
    if wildcards.source != NO_SOURCE and implements(wildcards.method, "extract"):
        inputs["artifact"] = R + f"/artifacts/{wildcards.method}/{wildcards.source}"
    return inputs


def _artifact_arg(wildcards, input):
    return input.get("artifact", "none")


rule init:
    input:
        unpack(_init_inputs),
    output:
        directory(STUDENT + "/init"),
    log:
        L + "/students/{method}/{source}/{shape}/seed{seed}/init.log",
    params:
        cfg=init_cfg,
        source=source_arg,
        artifact=_artifact_arg,
    threads: 1
    resources:
        **job_resources("init"),
    shell:
        harness("init", "--tokenizer {input.tokenizer} --seed {wildcards.seed} --source {params.source}",
                "--artifact {params.artifact} --out {output}")


def _pretrain_inputs(wildcards):
    return {"init": STUDENT.format(**wildcards) + "/init", "tokens": TOKENS, **source_input(wildcards)}


rule pretrain:
    input:
        unpack(_pretrain_inputs),
    output:
        directory(STUDENT + "/{budget}/pretrain"),
    log:
        L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/pretrain.log",
    params:
        cfg=pretrain_cfg,
        source=source_arg,
    threads: C.get("threads", 1)
    resources:
        **job_resources("pretrain"),
    shell:
        harness("pretrain", "--init {input.init} --tokens {input.tokens} --seed {wildcards.seed}",
                "--source {params.source} --out {output}")


def pretrained_path(method, source, shape, seed, budget):
    """The checkpoint SFT starts from: the method's own, or Scratch's when the method leaves
    initialisation and pre-training alone (it only adapts; see registry.shares_pretraining)."""
    if shares_pretraining(method):
        method, source = "scratch", NO_SOURCE
    return STUDENT.format(method=method, source=source, shape=shape, seed=seed) + f"/{budget}/pretrain"


def _pretrained(wildcards):
    return pretrained_path(wildcards.method, wildcards.source, wildcards.shape, wildcards.seed, wildcards.budget)


def _sft_inputs(wildcards, tasks):
    return {"pretrained": _pretrained(wildcards), "tasks": sorted({task_data(t) for t in tasks}),
            **source_input(wildcards)}


def _sft_rule(name, tasks, outputs, log):
    """One SFT job: `tasks` a fixed list, or a function of the wildcards (one task per job)."""
    tasks_of = tasks if callable(tasks) else lambda w: tasks

    rule:
        name: name
        input:
            unpack(lambda w: _sft_inputs(w, tasks_of(w))),
        output:
            outputs,
        log:
            log,
        params:
            cfg=lambda w: sft_cfg(w.method, tasks_of(w)),
            source=source_arg,
            task=lambda w: [task_path(t) for t in tasks_of(w)],
        threads: C.get("threads", 1)
        resources:
            **job_resources("sft"),
        shell:
            harness("sft", "--pretrained {input.pretrained} --task {params.task} --seed {wildcards.seed}",
                    "--source {params.source} --out {output}")


SFT_GROUPS = sft_groups()
if SFT_GROUPS is None:
    _sft_rule("sft", lambda w: [w.task], directory(STUDENT + "/{budget}/sft/{task}"),
              L + "/students/{method}/{source}/{shape}/seed{seed}/{budget}/sft/{task}.log")
else:
    for _kind, _tasks in SFT_GROUPS.items():
        _sft_rule("sft" if _kind == "multiple_choice" else "sft_generation", _tasks,
                  [directory(STUDENT + f"/{{budget}}/sft/{t}") for t in _tasks],
                  L + f"/students/{{method}}/{{source}}/{{shape}}/seed{{seed}}/{{budget}}/sft/{_kind}.log")
