# Source LLMs and the once-per-source extraction of each method.


def _source_build_inputs(wildcards):
    """A source pre-trained here needs the token stream; a checkpoint pointer needs nothing."""
    return {} if "model_path" in C["sources"][wildcards.source] else {"tokenizer": G.TOKENIZER, "tokens": G.TOKENS}


rule source:
    input:
        unpack(_source_build_inputs),
    output:
        directory(G.path("source")),
    log:
        G.log("source"),
    benchmark:
        G.benchmark_of("source", G.log("source")),
    params:
        cfg=lambda w: G.source_cfg(w.source),
        tokenizer=G.TOKENIZER,
        tokens=G.TOKENS,
    threads: 1
    resources:
        **G.job_resources("source"),
    shell:
        harness("source", "--name {wildcards.source} --tokenizer {params.tokenizer} --tokens {params.tokens}",
                "--out {output}")


def _extract_inputs(wildcards):
    """The source, the pre-training token stream, and the data of every task (expert counting)."""
    inputs = {"source": G.source_dir(wildcards.source), "tokens": G.tokens_for(wildcards.source),
              "tasks": sorted({G.task_data(t) for t in MC_TASKS})}
    if G.domains_dir() and G.C["corpus"]["kind"] != "world":  # the world is a task input already
        inputs["corpus"] = G.corpus_input()
    return inputs


rule extract:
    input:
        unpack(_extract_inputs),
    output:
        directory(G.path("artifact")),
    log:
        G.log("artifact"),
    benchmark:
        G.benchmark_of("extract", G.log("artifact")),
    params:
        cfg=lambda w: G.extract_cfg(w.method),
        tasks=[G.task_path(t) for t in MC_TASKS],
        domains=G.domains_dir() or "none",
    threads: C.get("threads", 1)
    resources:
        **G.job_resources("extract"),
    shell:
        harness("extract", "--source {input.source} --tokens {input.tokens} --tasks {params.tasks}",
                "--domains {params.domains} --out {output}")


# A checkpoint that reads text with its own tokenizer (`tokenizer: own`, DeepSeekMoE's 102,400
# tokens) aligns on the corpus in its own ids: the students' stream would be other text to it.
rule source_tokens:
    input:
        corpus=G.corpus_input(),
    output:
        G.path("source_tokens"),
    log:
        G.log("source_tokens"),
    benchmark:
        G.benchmark_of("source_tokens", G.log("source_tokens")),
    params:
        cfg=G.tokens_cfg(),
        corpus=G.corpus_file(),
        tokenizer=lambda w: C["sources"][w.source]["model_path"],
    wildcard_constraints:
        source=_alternatives([s for s, spec in C["sources"].items() if spec.get("tokenizer") == "own"] or ["-"]),
    threads: 1
    resources:
        **G.job_resources("tokens"),
    shell:
        harness("tokens", "--corpus {params.corpus} --tokenizer {params.tokenizer} --out {output}")


# Table 2 and the PKT table: each source fine-tuned on a task (the SFT its students get) and scored.
rule source_sft:
    input:
        source=G.path("source"),
        task=lambda w: G.task_data(w.task),
    output:
        directory(G.path("source_sft")),
    log:
        G.log("source_sft"),
    benchmark:
        G.benchmark_of("source_sft", G.log("source_sft")),
    params:
        cfg=lambda w: G.source_sft_cfg(w.task),
        task=lambda w: G.task_path(w.task),
    threads: C.get("threads", 1)
    resources:
        **G.job_resources("source_sft"),
    shell:
        harness("sft", "--pretrained {input.source} --task {params.task} --seed 0 --out {output}")


def _source_eval_mc_inputs(wildcards):
    models = ([G.source_dir(wildcards.source)] * len(MC_TASKS) if wildcards.variant == "base"
              else [G.path("source_sft", source=wildcards.source, task=t) for t in MC_TASKS])
    return {"models": models, "tasks": sorted({G.task_data(t) for t in MC_TASKS})}


# base: the source itself, zero-shot (the signal report's A2); sft: fine-tuned on each task
rule source_eval:
    input:
        unpack(_source_eval_mc_inputs),
    output:
        [G.path("source_eval", task=t) for t in MC_TASKS],
    log:
        G.log("source_eval"),
    benchmark:
        G.benchmark_of("source_eval", G.log("source_eval")),
    params:
        cfg=lambda w: G.source_eval_cfg(w.source, w.variant),
        tasks=[G.task_path(t) for t in MC_TASKS],
    wildcard_constraints:
        variant="base|sft",
    threads: 1
    resources:
        **G.job_resources("source_eval"),
    shell:
        harness("eval", "--models {input.models} --tasks {params.tasks} --outs {output}")


if GEN_TASKS:
    def _source_eval_inputs(wildcards):
        base = [G.source_dir(wildcards.source)] * len(GEN_TASKS)
        sft = [G.path("source_sft", source=wildcards.source, task=G.sft_task(t)) for t in GEN_TASKS]
        return {"models": base if wildcards.variant == "base" else sft, "tasks": [G.task_data(t) for t in GEN_TASKS]}


    rule source_eval_generation:
        input:
            unpack(_source_eval_inputs),
        output:
            [G.path("source_eval", task=t) for t in GEN_TASKS],
        log:
            G.log("source_eval_generation"),
        benchmark:
            G.benchmark_of("source_eval_generation", G.log("source_eval_generation")),
        params:
            cfg=lambda w: G.source_eval_cfg(w.source, w.variant, generation=True),
        wildcard_constraints:
            variant="base|sft",
        threads: C.get("threads", 1)
        resources:
            **G.job_resources("source_eval_generation"),
        shell:
            harness("eval-generation", "--models {input.models} --tasks {input.tasks} --outs {output}")
