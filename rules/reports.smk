# The paper's tables, rendered from evaluation JSON beside the paper's numbers.


rule table1:
    input:
        eval_files(C["report_budget"], MC_TASKS),
    output:
        "reports/table1.md",
    log:
        L + "/reports/table1.log",
    params:
        cfg=report_cfg(C["report_budget"]),
    threads: 1
    shell:
        harness("report table1", "--out {output} {input}")
