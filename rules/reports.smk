# The paper's tables and figures, one rule per report the profile asks for. Each report is a
# declaration in reports/tables/ (found by harness.workflow.report.REPORTS): when it is built, what it reads,
# its renderer's config slice; this file turns each into a rule and names no table.
from harness.workflow.report import all_targets, enabled_reports

REPORTS = enabled_reports(G)


def _report_rule(r):
    """A function, not a loop body: Snakemake evaluates a rule's `shell:` when the job runs, so
    a loop variable there would be the last report's for every rule."""
    log = G.log("report", report=r.name)
    # a table also as an HTML page, which Snakemake's report shows inline
    outputs = {"out": report(r.output, category=r.category),
               **({"page": report(r.page, category=r.category)} if r.page else {})}

    rule:
        name: r.name
        input:
            rendered=r.inputs(G),
            needs=r.needs(G),
        output:
            **outputs,
        log:
            log,
        benchmark:
            G.benchmark_of(r.name, log),
        params:
            cfg=r.cfg(G),
        threads: 1
        resources:
            **G.job_resources("report"),
        shell:
            harness(f"report {r.name}", "--out {output.out} {input.rendered}")


for _report in REPORTS:
    _report_rule(_report)
