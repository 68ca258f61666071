# Pre-training text, tokenizer, token stream, and task splits.


rule world:
    output:
        directory(WORLD),
    log:
        L + "/data/world.log",
    benchmark:
        benchmark_of("world", L + "/data/world.log"),
    params:
        cfg=as_json(world=C.get("world"), tasks=[t for t, v in C["tasks"].items() if v["kind"] == "generated"]),
    threads: 1
    resources:
        **job_resources("world"),
    shell:
        harness("world", "--out {output}")


rule corpus:
    output:
        directory(R + "/data/corpus"),
    log:
        L + "/data/corpus.log",
    benchmark:
        benchmark_of("corpus", L + "/data/corpus.log"),
    params:
        cfg=as_json(corpus=C["corpus"]),
    threads: 1
    resources:
        **job_resources("corpus"),
    shell:
        harness("corpus", "--out {output}")


rule tokenizer:
    input:
        corpus=corpus_input() if "vocab_size" in C["tokenizer"] else [],
    output:
        directory(TOKENIZER),
    log:
        L + "/data/tokenizer.log",
    benchmark:
        benchmark_of("tokenizer", L + "/data/tokenizer.log"),
    params:
        cfg=as_json(tokenizer=C["tokenizer"]),
        corpus=corpus_file(),
    threads: 1
    resources:
        **job_resources("tokenizer"),
    shell:
        harness("tokenizer", "--corpus {params.corpus} --out {output}")


rule tokens:
    input:
        corpus=corpus_input(),
        tokenizer=TOKENIZER,
    output:
        TOKENS,
    log:
        L + "/data/tokens.log",
    benchmark:
        benchmark_of("tokens", L + "/data/tokens.log"),
    params:
        cfg=as_json(),
        corpus=corpus_file(),
    threads: 1
    resources:
        **job_resources("tokens"),
    shell:
        harness("tokens", "--corpus {params.corpus} --tokenizer {input.tokenizer} --out {output}")


rule export_task:
    output:
        directory(R + "/data/tasks/{task}"),
    log:
        L + "/data/tasks/{task}.log",
    benchmark:
        benchmark_of("export_task", L + "/data/tasks/{task}.log"),
    params:
        cfg=export_task_cfg,
    threads: 1
    resources:
        **job_resources("export_task"),
    shell:
        harness("export-task", "--out {output}")


if GEN_TASKS:
    rule instruction_task:
        output:
            directory(R + "/data/instructions/{task}"),
        log:
            L + "/data/instructions/{task}.log",
        benchmark:
            benchmark_of("instruction_task", L + "/data/instructions/{task}.log"),
        params:
            cfg=instruction_task_cfg,
        wildcard_constraints:
            task=_alternatives(GEN_TASKS),
        threads: 1
        resources:
            **job_resources("instruction_task"),
        shell:
            harness("instruction-task", "--out {output}")
