# The paper's tables and figures, rendered from evaluation JSON beside the paper's numbers.
# Rows come from the config (`methods:` for Table 1, `ablation:` for Tables 4, 5 and Figure 4).

BUDGET = C["report_budget"]
SHAPES = list(C["shapes"])


rule table1:
    input:
        eval_files(rows(C), SHAPES, BUDGET, MC_TASKS),
    output:
        "reports/table1.md",
    log:
        L + "/reports/table1.log",
    params:
        cfg=report_cfg(rows(C), SHAPES, BUDGET),
    threads: 1
    shell:
        harness("report table1", "--out {output} {input}")


rule table3:
    input:
        eval_files(rows(C), SHAPES, BUDGET, GEN_TASKS),
    output:
        "reports/table3.md",
    log:
        L + "/reports/table3.log",
    params:
        cfg=report_cfg(rows(C), SHAPES, BUDGET, tasks="generation_tasks"),
    threads: 1
    shell:
        harness("report table3", "--out {output} {input}")


ABLATION_SHAPES = [C["ablation"]["shape"]] if ABLATIONS else []


def _ablation_inputs(report):
    return eval_files(ABLATIONS.get(report, []), ABLATION_SHAPES, BUDGET, MC_TASKS)


def _ablation_cfg(report):
    return report_cfg(ABLATIONS.get(report, []), ABLATION_SHAPES, BUDGET)


rule table4:
    input:
        _ablation_inputs("table4"),
    output:
        "reports/table4.md",
    log:
        L + "/reports/table4.log",
    params:
        cfg=_ablation_cfg("table4"),
    threads: 1
    shell:
        harness("report table4", "--out {output} {input}")


rule table5:
    input:
        _ablation_inputs("table5"),
    output:
        "reports/table5.md",
    log:
        L + "/reports/table5.log",
    params:
        cfg=_ablation_cfg("table5"),
    threads: 1
    shell:
        harness("report table5", "--out {output} {input}")


rule fig4:
    input:
        _ablation_inputs("fig4"),
    output:
        "reports/fig4.png",
    log:
        L + "/reports/fig4.log",
    params:
        cfg=_ablation_cfg("fig4"),
    threads: 1
    shell:
        harness("report fig4", "--out {output} {input}")
