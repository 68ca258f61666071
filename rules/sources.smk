# Source LLMs and the once-per-source extraction of each method.


def _source_build_inputs(wildcards):
    """A source pre-trained here needs the token stream; a checkpoint pointer needs nothing."""
    return {} if "model_path" in C["sources"][wildcards.source] else {"tokenizer": TOKENIZER, "tokens": TOKENS}


def _source_cfg(wildcards):
    return as_json(source=C["sources"][wildcards.source], seed=C["source_training"].get("seed", 0),
                   training=C["source_training"])


rule source:
    input:
        unpack(_source_build_inputs),
    output:
        directory(R + "/sources/{source}"),
    log:
        L + "/sources/{source}.log",
    params:
        cfg=_source_cfg,
        tokenizer=TOKENIZER,
        tokens=TOKENS,
    threads: 1
    shell:
        harness("source", "--name {wildcards.source} --tokenizer {params.tokenizer} --tokens {params.tokens}",
                "--out {output}")


def _extract_inputs(wildcards):
    """The source, the pre-training token stream, and the data of every task (expert counting)."""
    return {"source": R + f"/sources/{wildcards.source}", "tokens": TOKENS,
            "tasks": sorted({task_data(t) for t in MC_TASKS})}


rule extract:
    input:
        unpack(_extract_inputs),
    output:
        directory(R + "/artifacts/{method}/{source}"),
    log:
        L + "/artifacts/{method}/{source}.log",
    params:
        cfg=extract_cfg,
        tasks=" ".join(task_path(t) for t in MC_TASKS),
        domains=WORLD + "/domains" if C["corpus"]["kind"] == "world" else "none",
    threads: C.get("threads", 1)
    shell:
        harness("extract", "--source {input.source} --tokens {input.tokens} --tasks {params.tasks}",
                "--domains {params.domains} --out {output}")
