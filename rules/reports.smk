# The paper's tables and figures, rendered from evaluation JSON beside the paper's numbers.
# Rows come from the config (`methods:` for Table 1, `ablation:` for Tables 4, 5 and Figure 4).

BUDGET = C["report_budget"]
SHAPES = list(C["shapes"])


# the sources Table 1's rows transfer from, scored zero-shot and after SFT beside the grid (those
# trained here: a hub checkpoint's own evaluation would need its model code's opt-in in lm-eval too)
T1_SOURCES = list(dict.fromkeys(s for _, s, _ in G.rows if s != NO_SOURCE and "model_path" not in C["sources"][s]))


rule table1:
    input:
        G.eval_files(G.rows, SHAPES, BUDGET, MC_TASKS),
        G.eval_files(G.rows, SHAPES, BUDGET, MC_TASKS, stage="zeroshot"),
        G.eval_files(G.rows, SHAPES, BUDGET, MC_TASKS, stage="paraphrase") if G.paraphrase else [],
        [R + f"/sources-eval/{s}/{v}/{t}.json" for s in T1_SOURCES for v in ("base", "sft") for t in MC_TASKS],
    output:
        report("reports/table1.md", category="Tables"),
    log:
        L + "/reports/table1.log",
    benchmark:
        G.benchmark_of("table1", L + "/reports/table1.log"),
    params:
        cfg=G.report_cfg(G.rows, SHAPES, BUDGET,
                    sources=[[s, C["sources"][s].get("label", s)] for s in T1_SOURCES]),
    threads: 1
    resources:
        **G.job_resources("table1"),
    shell:
        harness("report table1", "--out {output} {input}")


rule table3:
    input:
        G.eval_files(G.rows, SHAPES, BUDGET, GEN_TASKS),
    output:
        report("reports/table3.md", category="Tables"),
    log:
        L + "/reports/table3.log",
    benchmark:
        G.benchmark_of("table3", L + "/reports/table3.log"),
    params:
        cfg=G.report_cfg(G.rows, SHAPES, BUDGET, tasks="generation_tasks"),
    threads: 1
    resources:
        **G.job_resources("table3"),
    shell:
        harness("report table3", "--out {output} {input}")


ABLATION_SHAPES = [C["ablation"]["shape"]] if G.ablations else []


def _ablation_rows(report, paired):
    """A paired report (Tables 4, 5) puts Table 1's reference row (Scratch) first, the base of its differences."""
    variants = G.ablations.get(report, [])
    return [G.reference, *variants] if paired else variants


def _ablation_inputs(report, paired=True):
    return G.eval_files(_ablation_rows(report, paired), ABLATION_SHAPES, BUDGET, MC_TASKS)


def _ablation_cfg(report, paired=True):
    return G.report_cfg(_ablation_rows(report, paired), ABLATION_SHAPES, BUDGET)


rule table4:
    input:
        _ablation_inputs("table4"),
    output:
        report("reports/table4.md", category="Tables"),
    log:
        L + "/reports/table4.log",
    benchmark:
        G.benchmark_of("table4", L + "/reports/table4.log"),
    params:
        cfg=_ablation_cfg("table4"),
    threads: 1
    resources:
        **G.job_resources("table4"),
    shell:
        harness("report table4", "--out {output} {input}")


rule table5:
    input:
        _ablation_inputs("table5"),
    output:
        report("reports/table5.md", category="Tables"),
    log:
        L + "/reports/table5.log",
    benchmark:
        G.benchmark_of("table5", L + "/reports/table5.log"),
    params:
        cfg=_ablation_cfg("table5"),
    threads: 1
    resources:
        **G.job_resources("table5"),
    shell:
        harness("report table5", "--out {output} {input}")


rule fig4:
    input:
        _ablation_inputs("fig4", paired=False),
    output:
        report("reports/fig4.png", category="Figures"),
    log:
        L + "/reports/fig4.log",
    benchmark:
        G.benchmark_of("fig4", L + "/reports/fig4.log"),
    params:
        cfg=_ablation_cfg("fig4", paired=False),
    threads: 1
    resources:
        **G.job_resources("fig4"),
    shell:
        harness("report fig4", "--out {output} {input}")


# Table 2 and Figures 2, 3 (generation tasks): which sources, shape and rows come from the
# config's `table2:` and `figures:` sections.
if GEN_TASKS and "table2" in C:
    T2 = C["table2"]
    T2_ROWS = [r for r in G.rows if r[0] == T2["method"] and r[1] in T2["sources"]]

    rule table2:
        input:
            sources=[R + f"/sources-eval/{s}/{v}/{t}.json" for s in T2["sources"] for v in ("base", "sft")
                     for t in GEN_TASKS],
            students=G.eval_files(T2_ROWS, [T2["shape"]], T2["budget"], GEN_TASKS),
        output:
            report("reports/table2.md", category="Tables"),
        log:
            L + "/reports/table2.log",
        benchmark:
            G.benchmark_of("table2", L + "/reports/table2.log"),
        params:
            cfg=G.report_cfg(T2_ROWS, [T2["shape"]], T2["budget"], tasks="generation_tasks",
                        sources=[[s, C["sources"][s].get("label", s)] for s in T2["sources"]]),
        threads: 1
        resources:
            **G.job_resources("table2"),
        shell:
            harness("report table2", "--out {output} {input}")

if GEN_TASKS and "figures" in C:
    FIG = C["figures"]
    FIG_ROWS = [r for r in G.rows if r[2] in FIG["rows"]]

    rule fig2:
        input:
            [f for b in C["budgets"] for f in G.eval_files(FIG_ROWS, [FIG["shape"]], b, GEN_TASKS)],
        output:
            report("reports/fig2.png", category="Figures"),
        log:
            L + "/reports/fig2.log",
        benchmark:
            G.benchmark_of("fig2", L + "/reports/fig2.log"),
        params:
            cfg=G.report_cfg(FIG_ROWS, [FIG["shape"]], BUDGET, tasks="generation_tasks",
                        budgets=[[b, spec["tokens"], spec.get("paper")] for b, spec in C["budgets"].items()]),
        threads: 1
        resources:
            **G.job_resources("fig2"),
        shell:
            harness("report fig2", "--out {output} {input}")

    def _curve_logs():
        return [[m, s, label, seed, R + f"/students/{m}/{s}/{FIG['shape']}/seed{seed}/{BUDGET}/sft/"
                 f"{G.sft_task(FIG['curve_task'])}/train_log.jsonl"] for m, s, label in FIG_ROWS for seed in C["seeds"]]

    rule fig3:
        input:
            [R + f"/students/{m}/{s}/{FIG['shape']}/seed{seed}/{BUDGET}/sft/{G.sft_task(FIG['curve_task'])}"
             for m, s, _ in FIG_ROWS for seed in C["seeds"]],
        output:
            report("reports/fig3.png", category="Figures"),
        log:
            L + "/reports/fig3.log",
        benchmark:
            G.benchmark_of("fig3", L + "/reports/fig3.log"),
        params:
            cfg=G.report_cfg(FIG_ROWS, [FIG["shape"]], BUDGET, tasks="generation_tasks",
                        curves=_curve_logs(), task=FIG["curve_task"], epochs=C["sft_generation"]["epochs"]),
        threads: 1
        resources:
            **G.job_resources("fig3"),
        shell:
            harness("report fig3", "--out {output} {input}")


# The parametric-knowledge-transfer table (LaTen paper, Table 1): rows adapt the Scratch student
# of one shape before SFT on each task; the reference source fine-tuned on each task sits on top.
if "pkt" in C:
    PKT = C["pkt"]

    rule table_pkt:
        input:
            reference=[R + f"/sources-eval/{PKT['reference']}/sft/{t}.json" for t in PKT["tasks"]],
            students=G.eval_files(G.pkt_rows, [PKT["shape"]], PKT["budget"], PKT["tasks"]),
        output:
            report("reports/table_pkt.md", category="Tables"),
        log:
            L + "/reports/table_pkt.log",
        benchmark:
            G.benchmark_of("table_pkt", L + "/reports/table_pkt.log"),
        params:
            cfg=as_json(profile=G.profile, seeds=C["seeds"], budget=PKT["budget"],
                        budget_paper=C["budgets"][PKT["budget"]].get("paper"),
                        budget_tokens=C["budgets"][PKT["budget"]]["tokens"], rows=[list(r) for r in G.pkt_rows],
                        shapes=[[PKT["shape"], C["shapes"][PKT["shape"]]]],
                        tasks=[[t, {**C["tasks"], **C.get("generation_tasks", {})}[t]["label"]] for t in PKT["tasks"]],
                        reference=list(pkt_reference_row(C)), statistics=C.get("statistics", {}),
                        also_compare_to=[list(r) for r in pkt_extra_reference_rows(C)],
                        reference_source=[PKT["reference"],
                                          C["sources"][PKT["reference"]].get("label", PKT["reference"])]),
        threads: 1
        resources:
            **G.job_resources("table_pkt"),
        shell:
            harness("report table_pkt", "--out {output} {input}")


# Data efficiency (table and figure): the held-out loss curves of the pre-trainings of the config's
# `efficiency:` rows and shapes, paired by seed with the reference row.
if "efficiency" in C:
    EFF = {"shapes": list(C["shapes"]), **C["efficiency"]}
    _WANTED = EFF.get("rows")  # labels; all rows when absent
    EFF_ROWS = [G.reference, *(r for r in G.rows if r != G.reference and (_WANTED is None or r[2] in _WANTED))]
    EFF_RUNS = [(m, s, shape, seed, G.pretrained(m, s, shape, seed, EFF["budget"]))
                for m, s, _ in EFF_ROWS for shape in EFF["shapes"] for seed in C["seeds"]]
    EFF_CFG = as_json(profile=G.profile, seeds=C["seeds"], budget=EFF["budget"],
                      budget_tokens=C["budgets"][EFF["budget"]]["tokens"], rows=[list(r) for r in EFF_ROWS],
                      shapes=EFF["shapes"], reference=list(G.reference), heldout=G.heldout_cfg(),
                      curves=[[m, s, shape, seed, path + "/train_log.jsonl"] for m, s, shape, seed, path in EFF_RUNS])

    rule table_efficiency:
        input:
            sorted({path for *_, path in EFF_RUNS}),
        output:
            report("reports/table_efficiency.md", category="Tables"),
        log:
            L + "/reports/table_efficiency.log",
        benchmark:
            G.benchmark_of("table_efficiency", L + "/reports/table_efficiency.log"),
        params:
            cfg=EFF_CFG,
        threads: 1
        resources:
            **G.job_resources("table_efficiency"),
        shell:
            harness("report table_efficiency", "--out {output} {input}")

    rule fig_efficiency:
        input:
            rules.table_efficiency.input,
        output:
            report("reports/fig_efficiency.png", category="Figures"),
        log:
            L + "/reports/fig_efficiency.log",
        benchmark:
            G.benchmark_of("fig_efficiency", L + "/reports/fig_efficiency.log"),
        params:
            cfg=EFF_CFG,
        threads: 1
        resources:
            **G.job_resources("fig_efficiency"),
        shell:
            harness("report fig_efficiency", "--out {output} {input}")


# reports/signal.md: the acceptance criteria of SIGNAL.md on one shape: the controls, the
# transfer rows named in `signal.transfer`, the sources they come from, the untrained student.
if "signal" in C:
    SIG = C["signal"]
    SIG_TRANSFER = [r for r in G.rows if r[2] in SIG["transfer"]]
    SIG_ROWS = [G.reference, *G.signal_controls.values(), *SIG_TRANSFER]
    SIG_SOURCES = list(dict.fromkeys([*SIG["sources"], *(s for _, s, _ in G.signal_controls.values() if s != NO_SOURCE)]))

    def _signal_untrained():
        return [STUDENT.format(method=G.reference[0], source=G.reference[1], shape=SIG["shape"], seed=seed)
                + f"/init-eval/{t}.json" for seed in C["seeds"] for t in MC_TASKS]

    rule signal:
        input:
            evals=[*G.eval_files(SIG_ROWS, [SIG["shape"]], BUDGET, MC_TASKS),
                   *G.eval_files(SIG_ROWS, [SIG["shape"]], BUDGET, MC_TASKS, stage="zeroshot"),
                   *_signal_untrained(),
                   *[R + f"/sources-eval/{s}/{v}/{t}.json" for s in SIG_SOURCES for v in ("base", "sft")
                     for t in MC_TASKS]],
            data=[G.WORLD, *(G.task_data(t) for t in GEN_TASKS)],
        output:
            report("reports/signal.md", category="Benchmark signal"),
        log:
            L + "/reports/signal.log",
        benchmark:
            G.benchmark_of("signal", L + "/reports/signal.log"),
        params:
            cfg=G.report_cfg(SIG_ROWS, [SIG["shape"]], BUDGET,
                        shape=[SIG["shape"], C["shapes"][SIG["shape"]]],
                        controls={role: list(r) for role, r in G.signal_controls.items()},
                        transfer=[list(r) for r in SIG_TRANSFER],
                        sources=[[s, C["sources"][s].get("label", s)] for s in SIG_SOURCES],
                        world=G.WORLD,
                        generation=[[t, C["generation_tasks"][t]["label"], G.task_data(t)] for t in GEN_TASKS
                                    if C["generation_tasks"][t]["kind"] == "generated"]),
        threads: 1
        resources:
            **G.job_resources("signal"),
        shell:
            harness("report signal", "--out {output} {input.evals}")
