# Pre-training text, tokenizer, token stream, and task splits.


rule world:
    output:
        directory(G.WORLD),
    log:
        L + "/data/world.log",
    benchmark:
        G.benchmark_of("world", L + "/data/world.log"),
    params:
        cfg=as_json(world=C.get("world"), tasks=[t for t, v in C["tasks"].items() if v["kind"] == "generated"]),
    threads: 1
    resources:
        **G.job_resources("world"),
    shell:
        harness("world", "--out {output}")


rule corpus:
    output:
        directory(R + "/data/corpus"),
    log:
        L + "/data/corpus.log",
    benchmark:
        G.benchmark_of("corpus", L + "/data/corpus.log"),
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
        L + "/data/tokenizer.log",
    benchmark:
        G.benchmark_of("tokenizer", L + "/data/tokenizer.log"),
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
        L + "/data/tokens.log",
    benchmark:
        G.benchmark_of("tokens", L + "/data/tokens.log"),
    params:
        cfg=as_json(),
        corpus=G.corpus_file(),
    threads: 1
    resources:
        **G.job_resources("tokens"),
    shell:
        harness("tokens", "--corpus {params.corpus} --tokenizer {input.tokenizer} --out {output}")


rule export_task:
    output:
        directory(R + "/data/tasks/{task}"),
    log:
        L + "/data/tasks/{task}.log",
    benchmark:
        G.benchmark_of("export_task", L + "/data/tasks/{task}.log"),
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
            directory(R + "/data/instructions/{task}"),
        log:
            L + "/data/instructions/{task}.log",
        benchmark:
            G.benchmark_of("instruction_task", L + "/data/instructions/{task}.log"),
        params:
            cfg=lambda w: G.instruction_task_cfg(w.task),
        wildcard_constraints:
            task=_alternatives(GEN_TASKS),
        threads: 1
        resources:
            **G.job_resources("instruction_task"),
        shell:
            harness("instruction-task", "--out {output}")
