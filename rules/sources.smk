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


rule extract:
    input:
        source=R + "/sources/{source}",
    output:
        directory(R + "/artifacts/{method}/{source}"),
    log:
        L + "/artifacts/{method}/{source}.log",
    params:
        cfg=extract_cfg,
    threads: 1
    shell:
        harness("extract", "--source {input.source} --out {output}")
