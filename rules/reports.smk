# The paper's tables and figures, one rule per report the profile asks for. Each report is a
# declaration in reports/tables/ (named in reports/registry.py): when it is built, what it reads,
# its renderer's config slice; this file turns each into a rule and names no table.
from reports.registry import enabled_reports

REPORTS = enabled_reports(G)

for _report in REPORTS:
    rule:
        name: _report.name
        input:
            rendered=_report.inputs(G),
            needs=_report.needs(G),
        output:
            report(_report.output, category=_report.category),
        log:
            L + f"/reports/{_report.name}.log",
        benchmark:
            G.benchmark_of(_report.name, L + f"/reports/{_report.name}.log"),
        params:
            cfg=_report.cfg(G),
        threads: 1
        resources:
            **G.job_resources(_report.name),
        shell:
            harness(f"report {_report.name}", "--out {output} {input.rendered}")
