# Pre-training text, tokenizer, token stream, and task splits.


rule world:
    output:
        directory(G.WORLD),
    log:
        G.log("world"),
    benchmark:
        G.benchmark_of("world", G.log("world")),
    params:
        cfg=as_json(world=C.get("world"), tasks=[t for t, v in C["tasks"].items() if v["kind"] == "generated"]),
    threads: 1
    resources:
        **G.job_resources("world"),
    shell:
        harness("world", "--out {output}")


rule corpus:
    output:
        directory(G.path("corpus")),
    log:
        G.log("corpus"),
    benchmark:
        G.benchmark_of("corpus", G.log("corpus")),
    params:
        cfg=as_json(corpus=C["corpus"]),
    threads: 1
    resources:
        **G.job_resources("corpus"),
    shell:
        harness("corpus", "--out {output}")


rule tokenizer:
    input:
        corpus=G.corpus_input() if "vocab_size" in C["tokenizer"] else [],
    output:
        directory(G.TOKENIZER),
    log:
        G.log("tokenizer"),
    benchmark:
        G.benchmark_of("tokenizer", G.log("tokenizer")),
    params:
        cfg=as_json(tokenizer=C["tokenizer"]),
        corpus=G.corpus_file(),
    threads: 1
    resources:
        **G.job_resources("tokenizer"),
    shell:
        harness("tokenizer", "--corpus {params.corpus} --out {output}")


rule tokens:
    input:
        corpus=G.corpus_input(),
        tokenizer=G.TOKENIZER,
    output:
        G.TOKENS,
    log:
        G.log("tokens"),
    benchmark:
        G.benchmark_of("tokens", G.log("tokens")),
    params:
        cfg=G.tokens_cfg(),
        corpus=G.corpus_file(),
    threads: 1
    resources:
        **G.job_resources("tokens"),
    shell:
        harness("tokens", "--corpus {params.corpus} --tokenizer {input.tokenizer} --out {output}")


rule export_task:
    output:
        directory(G.path("task_export")),
    log:
        G.log("task_export"),
    benchmark:
        G.benchmark_of("export_task", G.log("task_export")),
    params:
        cfg=lambda w: G.export_task_cfg(w.task),
    threads: 1
    resources:
        **G.job_resources("export_task"),
    shell:
        harness("export-task", "--out {output}")


if GEN_TASKS:
    rule instruction_task:
        output:
            directory(G.path("instructions")),
        log:
            G.log("instructions"),
        benchmark:
            G.benchmark_of("instruction_task", G.log("instructions")),
        params:
            cfg=lambda w: G.instruction_task_cfg(w.task),
        wildcard_constraints:
            task=_alternatives(GEN_TASKS),
        threads: 1
        resources:
            **G.job_resources("instruction_task"),
        shell:
            harness("instruction-task", "--out {output}")
