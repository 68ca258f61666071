"""The whole DAG on the smoke profile, read back; planning of the paper grid; bad config."""

import base64
import json
import re
import statistics
import subprocess
import sys

import pytest
import yaml
from scipy.stats import t as student_t

from tests.conftest import REPO

SNAKEMAKE = ["-m", "snakemake", "-s", str(REPO / "Snakefile")]


def snakemake(workdir, *args, timeout=2400, python=sys.executable):
    return subprocess.run([str(python), *SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True,
                          text=True, timeout=timeout)


def parse_table(text, index=0):
    """{(shape, row): [cells]} from the `index`-th Markdown table of the text (0: the plain grid,
    then its paired differences, ...), carrying the shape down its block."""
    tables, current, shape = [], None, None
    for line in text.splitlines():
        if line.startswith("| Shape"):
            current = {}
            tables.append(current)
        elif line.startswith("| ") and current is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            shape = cells[0].split()[-1] if cells[0] else shape
            current[(shape, cells[1])] = cells[2:]
        elif not line.startswith("|"):
            current = None
    return tables[index]


# Every report the smoke profile builds, in one Snakemake run: one DAG to plan, and two cores kept
# busy to the end (a run per report idles one core through each run's tail).
SMOKE_REPORTS = ["table1.md", "table_efficiency.md", "fig_efficiency.png", "table3.md", "table2.md", "fig2.png",
                 "fig3.png", "table4.md", "table5.md", "fig4.png", "table_pkt.md", "fig_forest_table1.png",
                 "results.parquet"]
# The tests below share one workdir, so one pytest-xdist worker runs them all (`--dist loadgroup`).
def smoke_dag(test):
    return pytest.mark.slow(pytest.mark.xdist_group("smoke-dag")(test))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    proc = snakemake(workdir, "-j2", *(f"reports/{r}" for r in SMOKE_REPORTS),
                     "--configfile", str(REPO / "config/smoke.yaml"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@smoke_dag
def test_smoke_table1_numbers_are_the_evaluations(smoke_run):
    text = (smoke_run / "reports/table1.md").read_text()
    assert "Profile `smoke`" in text and "seeds 0, 1" in text
    table = parse_table(text)
    tasks = ["boolq", "piqa"]
    for (row, method, source) in [("Scratch", "scratch", "none"), ("MASA-OLMoE", "masa", "olmoe")]:
        _check_row(smoke_run, table, row, method, source, tasks)
    # the paper's Table 1 Scratch numbers sit beside ours (12L-267M BoolQ: 71.65)
    assert "(71.65)" in table[("1L-tiny", "Scratch")][0]
    # the paired differences to Scratch: every other row, its mean the mean of the per-item differences
    paired = parse_table(text, 1)
    assert set(paired) == {("1L-tiny", "MASA-OLMoE"), ("2L-tiny", "MASA-OLMoE")}
    for shape in ("1L-tiny", "2L-tiny"):
        diffs = []
        for task in tasks:
            def items(method, source, seed):
                path = smoke_run / f"results/smoke/students/{method}/{source}/{shape}/seed{seed}/250k/eval/{task}.json"
                return json.loads(path.read_text())["items"]
            per_seed = [[a["score"] - b["score"]
                         for a, b in zip(items("masa", "olmoe", s), items("scratch", "none", s))] for s in (0, 1)]
            diffs.append(statistics.fmean(x for seed in per_seed for x in seed))
        cells = paired[(shape, "MASA-OLMoE")]
        assert float(cells[len(tasks)]) == pytest.approx(statistics.fmean(diffs), abs=0.005)
        assert cells[-1] in ("▲ yes", "▼ yes", "no")
    # zero-shot: the same students before SFT, from their own evaluation files
    assert "## Zero-shot" in text
    zeroshot = parse_table(text, 2)
    for shape in ("1L-tiny", "2L-tiny"):
        values = [json.loads((smoke_run / f"results/smoke/students/scratch/none/{shape}/seed{s}/250k/eval/zeroshot/"
                                          "boolq.json").read_text()) for s in (0, 1)]
        assert all(v["stage"] == "zeroshot" and v["model"].endswith("250k/pretrain") for v in values)
        assert zeroshot[(shape, "Scratch")][0].startswith(f"{statistics.fmean(v['value'] for v in values):.2f}")
    # the held-out phrasing: the fine-tuned students on each task's paraphrase split
    assert "## Held-out phrasing" in text
    para = json.loads((smoke_run / "results/smoke/students/scratch/none/1L-tiny/seed0/250k/eval/paraphrase/"
                                   "piqa.json").read_text())
    assert para["stage"] == "paraphrase" and para["model"].endswith("sft/piqa")
    # the source the rows transfer from, zero-shot and after SFT, from its own evaluation files
    base = json.loads((smoke_run / "results/smoke/sources-eval/olmoe/base/boolq.json").read_text())
    assert base["stage"] == "zeroshot" and re.search(rf"\| OLMoE zero-shot \| {base['value']:.2f} \|", text)


@smoke_dag
def test_smoke_data_efficiency_table_and_figure(smoke_run):
    table = parse_table((smoke_run / "reports/table_efficiency.md").read_text())
    assert set(table) == {(s, r) for s in ("1L-tiny", "2L-tiny") for r in ("Scratch", "MASA-OLMoE")}
    log = (smoke_run / "results/smoke/students/scratch/none/1L-tiny/seed0/250k/pretrain/train_log.jsonl")
    points = [json.loads(l) for l in log.read_text().splitlines() if "heldout_loss" in l]
    # held-out loss from step 0, every 3 steps and after the last (10 steps of 512 tokens)
    assert [p["tokens"] for p in points] == [0, 1536, 3072, 4608, 5120]
    finals = [json.loads(l)["eval"]["heldout_loss"] for s in (0, 1) for l in
              (smoke_run / f"results/smoke/students/scratch/none/1L-tiny/seed{s}/250k/pretrain/train_log.jsonl")
              .read_text().splitlines() if '"tokens": 5120, "eval"' in l]
    assert table[("1L-tiny", "Scratch")][0].startswith(f"{statistics.fmean(finals):.3f}")
    png = (smoke_run / "reports/fig_efficiency.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def _final_heldout(smoke_run, method, source, shape, seed):
    log = smoke_run / f"results/smoke/students/{method}/{source}/{shape}/seed{seed}/250k/pretrain/train_log.jsonl"
    return [json.loads(line)["eval"]["heldout_loss"] for line in log.read_text().splitlines()
            if "heldout_loss" in line][-1]


@smoke_dag
def test_smoke_table1_and_table4_loss_views_are_the_training_logs(smoke_run):
    """The loss view under Table 1 and Table 4: each row's gap at the budget is the seed mean of
    its final held-out loss minus Scratch's, read here from the pre-training logs themselves."""
    for report, row, method in (("table1.md", "MASA-OLMoE", "masa"), ("table4.md", "w.o. Adaptive Scaling",
                                                                       "masa-no-scaling")):
        text = (smoke_run / "reports" / report).read_text()
        assert "## The loss view" in text
        loss = parse_table(text.split("## The loss view")[1])
        for shape in (("1L-tiny", "2L-tiny") if report == "table1.md" else ("2L-tiny",)):
            gaps = [_final_heldout(smoke_run, method, "olmoe", shape, s) - _final_heldout(smoke_run, "scratch", "none",
                                                                                          shape, s) for s in (0, 1)]
            assert float(loss[(shape, row)][0].split()[0]) == pytest.approx(statistics.fmean(gaps), abs=5e-4)


def _check_row(smoke_run, table, row, method, source, tasks):
    evals = [json.loads(p.read_text()) for p in (smoke_run / f"results/smoke/students/{method}/{source}").rglob(
        "eval/*.json")]
    evals = [e for e in evals if e["task"] in tasks]
    assert len(evals) == 2 * 2 * len(tasks)  # shapes x seeds x tasks
    for shape in ("1L-tiny", "2L-tiny"):
        cells = table[(shape, row)]
        assert len(cells) == len(tasks) + 1
        per_seed = {}
        for task, c in zip(tasks, cells):
            values = [e["value"] for e in evals if e["shape_name"] == shape and e["task"] == task]
            for e in evals:
                if e["shape_name"] == shape and e["task"] == task:
                    per_seed.setdefault(e["seed"], []).append(e["value"])
            mean = statistics.fmean(values)
            half = student_t.ppf(0.975, 1) * statistics.stdev(values) / 2 ** 0.5
            m = re.fullmatch(r"([\d.]+) ± ([\d.]+) \(([\d.]+)\)", c)
            assert m, c
            assert float(m.group(1)) == pytest.approx(mean, abs=0.005)
            assert float(m.group(2)) == pytest.approx(half, abs=0.005)
        avg = statistics.fmean(statistics.fmean(v) for v in per_seed.values())
        assert float(cells[-1].split()[0]) == pytest.approx(avg, abs=0.005)


@smoke_dag
def test_smoke_table3_rouge_l_numbers_and_sft_curves(smoke_run):
    table = parse_table((smoke_run / "reports/table3.md").read_text())
    for (row, method, source) in [("Scratch", "scratch", "none"), ("MASA-OLMoE", "masa", "olmoe")]:
        _check_row(smoke_run, table, row, method, source, ["dolly"])
    assert "(21.60)" in table[("1L-tiny", "Scratch")][0]  # the paper's Table 3 DollyEval, 267M Scratch
    result = json.loads(next((smoke_run / "results/smoke").rglob("eval/dolly.json")).read_text())
    assert result["metric"] == "rougeL" and set(result["per_seed"]) == {"10", "20"} and result["new_tokens"] > 0
    # the SFT log holds the dev Rouge-L of every epoch (2 epochs, every_epochs 1)
    log = next((smoke_run / "results/smoke").rglob("sft/dolly/train_log.jsonl")).read_text().splitlines()
    assert len([l for l in log if '"eval"' in l]) == 2


@smoke_dag
def test_smoke_table2_and_generation_figures(smoke_run):
    lines = {l.split("|")[1].strip(): [c.strip() for c in l.strip().strip("|").split("|")[1:]]
             for l in (smoke_run / "reports/table2.md").read_text().splitlines() if l.startswith("| ")}
    base = json.loads((smoke_run / "results/smoke/sources-eval/olmoe/base/dolly.json").read_text())["value"]
    tuned = json.loads((smoke_run / "results/smoke/sources-eval/olmoe/sft/dolly.json").read_text())["value"]
    assert lines["OLMoE"][0] == f"{base:.2f} (10.78)" and lines["OLMoE-SFT"][0] == f"{tuned:.2f} (29.13)"
    student = [json.loads(p.read_text())["value"] for p in
               (smoke_run / "results/smoke/students/masa/olmoe/2L-tiny").rglob("250k/eval/dolly.json")]
    assert float(lines["MASA-OLMoE (2L-tiny)"][0].split()[0]) == pytest.approx(statistics.fmean(student), abs=0.005)
    if tuned:
        assert lines["% of OLMoE-SFT"][0] == f"{100 * statistics.fmean(student) / tuned:.1f}%"
    for fig in ("fig2", "fig3"):
        png = (smoke_run / f"reports/{fig}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


@smoke_dag
def test_smoke_outputs_carry_their_config_and_seed(smoke_run):
    pre = next((smoke_run / "results/smoke").rglob("seed1/250k/pretrain/run.json"))
    record = json.loads(pre.read_text())
    assert record["seed"] == 1 and record["stage"] == "pretrain" and record["tokens"] == 5120
    assert record["config"]["pretrain"]["seq_len"] == 64
    assert not list((smoke_run / "results").rglob("*.work")) and not list((smoke_run / "results").rglob("*.tmp"))


@smoke_dag
def test_second_run_has_nothing_to_do(smoke_run):
    proc = snakemake(smoke_run, "-j2", *(f"reports/{r}" for r in SMOKE_REPORTS),
                     "--configfile", str(REPO / "config/smoke.yaml"))
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def second_venv(folder):
    """Another venv that sees this interpreter's packages (a `.pth` line that adds its site
    folders): the same installation reached through another `sys.executable`."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    site_dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (pth,) = folder.glob("lib/python3*/site-packages")
    (pth / "parent-env.pth").write_text(f"import site; list(map(site.addsitedir, {site_dirs!r}))\n")
    return folder / "bin" / "python"


@smoke_dag
def test_a_run_from_another_venv_has_nothing_to_do(smoke_run, tmp_path):
    """Snakemake reruns a job whose rule's command text changed: the interpreter's path must not be in it."""
    proc = snakemake(smoke_run, "-n", *(f"reports/{r}" for r in SMOKE_REPORTS),
                     "--configfile", str(REPO / "config/smoke.yaml"), timeout=600,
                     python=second_venv(tmp_path / "venv"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]


@smoke_dag
def test_one_html_page_holds_every_table_and_figure(smoke_run):
    """`snakemake --report`: Snakemake's self-contained HTML page of the run (every output marked
    with `report()`); `python -m harness timings` reads the run's benchmark files."""
    proc = snakemake(smoke_run, "--report", "results.html", *(f"reports/{r}" for r in SMOKE_REPORTS),
                     "--configfile", str(REPO / "config/smoke.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (smoke_run / "results.html").read_text(errors="replace")
    for name in SMOKE_REPORTS:
        assert name in page, name
    # Table 1's numbers inline: its HTML page, embedded in the report, holds the Markdown's cells as cells
    embedded = [base64.b64decode(uri).decode() for uri in
                re.findall(r"data:text/html[^\"']*base64,([A-Za-z0-9+/=]+)", page)]
    table1 = next(html for html in embedded if "<title>table1</title>" in html)
    first_row = next(line for line in (smoke_run / "reports/table1.md").read_text().splitlines()
                     if line.startswith("| 32 × 64"))
    cell = [c.strip() for c in first_row.strip("|").split("|")][2]
    assert "±" in cell and f"<td>{cell}</td>" in table1
    proc = subprocess.run([sys.executable, "-m", "harness", "timings", "--profile", "smoke", "--cores", "2",
                           "--no-startup"], cwd=smoke_run, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| pretrain |" in proc.stdout and "| sft |" in proc.stdout and "Span, first job's start" in proc.stdout
    # and each estimated rule against its GEMM-bound floor, from the run's own files
    floor = proc.stdout.split("| floor / had |")[1]
    assert all(f"| {rule} | " in floor for rule in ("pretrain", "sft", "source")), proc.stdout


# Chromium's flags for a closed network (no background connections, no sandbox as root)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@smoke_dag
def test_the_report_shows_table1_in_a_browser(smoke_run, tmp_path):
    """What a reader sees: headless Chromium opens `snakemake --report`'s page, goes to Results,
    Tables, and opens table1.html's view; the page it shows holds Table 1's first cell. Needs a
    Chromium (`apt install chromium`) and Playwright (`pip install playwright`; no browser
    download: it drives that Chromium); skipped without them."""
    import shutil

    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine")
    page_file = tmp_path / "report.html"
    proc = snakemake(smoke_run, "--report", str(page_file), "reports/table1.md",
                     "--configfile", str(REPO / "config/smoke.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    first_row = next(line for line in (smoke_run / "reports/table1.md").read_text().splitlines()
                     if line.startswith("| 32 × 64"))
    cell = [c.strip() for c in first_row.strip("|").split("|")][2]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.get_by_text("Results", exact=True).first.click()
            page.get_by_text("Tables", exact=True).first.click()
            page.locator("tr", has_text="reports/table1.html").first.locator("a[iconname=eye]").click()
            page.wait_for_function("() => [...document.querySelectorAll('iframe')].length > 0")
            frame = next(f for f in page.frames if "filename=table1.html" in f.url)
            shown = frame.inner_text("body")
        finally:
            browser.close()
    assert cell in shown and "Scratch" in shown, shown[:500]


@smoke_dag
def test_lost_outputs_are_rebuilt_and_nothing_else(smoke_run):
    """Removing the table and one student's evaluation reruns exactly the job that wrote it (with
    `sft_jobs: student`, the student's fine-tuning and evaluation) and the table, with the same numbers."""
    ev = smoke_run / "results/smoke/students/scratch/none/1L-tiny/seed0/250k/eval/boolq.json"
    before = json.loads(ev.read_text())["value"]
    table = (smoke_run / "reports/table1.md").read_text()
    ev.unlink()
    (smoke_run / "reports/table1.md").unlink()
    proc = snakemake(smoke_run, "-j2", "reports/table1.md", "--configfile", str(REPO / "config/smoke.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout + proc.stderr)
    assert counts == {"sft": 1, "table1": 1, "total": 2}, counts
    assert json.loads(ev.read_text())["value"] == before  # evaluation is deterministic
    assert (smoke_run / "reports/table1.md").read_text().split("\n")[4:] == table.split("\n")[4:]


def _job_counts(stdout):
    """{rule: count} from Snakemake's "Job stats" table (it ends at the first blank line)."""
    counts = {}
    for line in stdout.split("Job stats:")[1].splitlines()[3:]:
        if not line.strip():
            break
        rule, count = line.split()
        counts[rule] = int(count)
    return counts


def test_signal_report_plans_only_what_its_criteria_need(tmp_path):
    """One shape, the reference, four controls and one transfer row, per seed; the untrained
    student; the named source and the twin, zero-shot and fine-tuned (smoke: 2 seeds, 2 tasks)."""
    proc = snakemake(tmp_path, "-n", "reports/signal.md", "--configfile", str(REPO / "config/smoke.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout)
    rows, seeds, tasks = 1 + 4 + 1, 2, 2
    # sft_jobs: student, so one job per student fine-tunes it on both tasks and evaluates it
    assert counts["pretrain"] == counts["sft"] == rows * seeds and "eval" not in counts
    assert counts["init_eval"] == seeds and counts["source"] == 2 and counts["source_eval"] == 2 * 2
    assert counts["source_sft"] == 2 * tasks and counts["extract"] == 1 and counts["signal"] == 1
    assert "sources/twin" in proc.stdout and "students/oracle-ffn/twin/2L-tiny" in proc.stdout

    # `signal.seeds`: the power rows (Scratch, A/A, Oracle-FFN, the transfer row) and the untrained
    # student on those; the Oracle and the graded control stay on the profile's two
    more = tmp_path / "more-seeds.yaml"
    more.write_text("signal: {seeds: [0, 1, 2, 3]}\n")
    proc = snakemake(tmp_path, "-n", "reports/signal.md", "--configfile", str(REPO / "config/smoke.yaml"), str(more))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout)
    assert counts["pretrain"] == counts["sft"] == 4 * 4 + 2 * seeds and counts["init_eval"] == 4
    assert "students/scratch-aa/none/2L-tiny/seed3" in proc.stdout
    assert "students/oracle/twin/2L-tiny/seed2" not in proc.stdout


def test_paper_grid_is_planned(tmp_path):
    proc = snakemake(tmp_path, "-n", "reports/table1.md", "--configfile", str(REPO / "config/paper.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout)
    rows, shapes, tasks, seeds, sources = 8, 4, 6, 1, 3
    assert counts["sft"] == rows * shapes * tasks * seeds
    assert counts["eval"] == counts["pretrain"] == rows * shapes * seeds and "init" not in counts
    assert counts["export_task"] == tasks and counts["corpus"] == 1 and counts["source"] == sources
    # knowledge is size-decoupled: one extraction per (method, source), shared by every shape;
    # MASA from 3 sources and EEP's search on OLMoE extract (prune-then-distill builds its students
    # from that same search), Distillation and Weight Selection read their source directly
    assert counts["extract"] == 3 + 1
    # DeepSeekMoE reads text with its own tokenizer: its extraction aligns on a stream of its own ids
    assert counts["tokens"] == counts["source_tokens"] == 1
    jobs = proc.stdout.split("\nrule ")
    deepseek = [j for j in jobs if j.startswith("extract:") and "wildcards: method=masa, source=deepseek" in j]
    olmo = [j for j in jobs if j.startswith("extract:") and "wildcards: method=masa, source=olmo" in j]
    assert "results/paper/data/tokens-deepseek.npy" in deepseek[0] and "data/tokens.npy" in olmo[0]
    proc = snakemake(tmp_path, "-n", "reports/table3.md", "--configfile", str(REPO / "config/paper.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout)
    # like MiniLLM, all five sets train on Dolly's files: one SFT job per student serves the five
    assert counts["instruction_task"] == 5 and counts["sft"] == rows * shapes * seeds
    assert counts["eval_generation"] == counts["pretrain"] == rows * shapes * seeds
    assert "sft/dolly" in proc.stdout and "sft/vicuna" not in proc.stdout


def test_bad_config_fails_in_one_line_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pretrain: {learning_rate: 0.1}\n")
    proc = snakemake(tmp_path, "-n", "reports/table1.md", "--configfile", str(bad))
    assert proc.returncode != 0
    assert "error: config error: unknown key 'learning_rate' in pretrain; allowed:" in proc.stderr
    assert not (tmp_path / "results").exists()


@smoke_dag
def test_ablation_reports(smoke_run):
    table4 = parse_table((smoke_run / "reports/table4.md").read_text())
    assert [row for _, row in table4] == ["Scratch", "w.o. Spectral Alignment", "w.o. Adaptive Scaling", "MASA"]
    assert "(73.36)" in table4[("2L-tiny", "MASA")][0]  # the paper's Table 4 BoolQ for full MASA
    assert [row for _, row in parse_table((smoke_run / "reports/table4.md").read_text(), 1)] == [
        "w.o. Spectral Alignment", "w.o. Adaptive Scaling", "MASA"]  # each paired with Scratch
    # the generation columns: the same rows in Rouge-L, the paper's DollyEval beside, then paired
    generation = parse_table((smoke_run / "reports/table4.md").read_text(), 2)
    assert [row for _, row in generation] == ["Scratch", "w.o. Spectral Alignment", "w.o. Adaptive Scaling", "MASA"]
    assert "(24.46)" in generation[("2L-tiny", "MASA")][0] and "±" in generation[("2L-tiny", "MASA")][0]
    assert [row for _, row in parse_table((smoke_run / "reports/table5.md").read_text(), 3)] == ["3%", "MASA"]
    table5 = parse_table((smoke_run / "reports/table5.md").read_text())
    assert [row for _, row in table5] == ["Scratch", "3%", "MASA"] and "(72.14)" in table5[("2L-tiny", "3%")][0]
    # under the table, each row's genes in all (L45's way of stating their size), from its manifest
    genes = json.loads((smoke_run / "results/smoke/artifacts/masa-ratio3/olmoe/manifest.json").read_text())["genes"]
    assert f"| 3% | {genes['matrices']} | {genes['parameters']:,} |" in (smoke_run / "reports/table5.md").read_text()
    png = (smoke_run / "reports/fig4.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    # one extraction per (variant, source), none per student; `masa-no-scaling` differs from `masa`
    # only in how its genes are scaled into the student (MASA.init_options), so it reads masa's
    artifacts = sorted(p.parent.name for p in (smoke_run / "results/smoke/artifacts").glob("*/olmoe"))
    assert artifacts == ["masa", "masa-domain-law", "masa-no-spectral", "masa-ratio3"]
    manifest = json.loads((smoke_run / "results/smoke/artifacts/masa-no-spectral/olmoe/manifest.json").read_text())
    assert manifest["spectral_weight"] == 0.0


@smoke_dag
def test_smoke_pkt_table(smoke_run):
    """Adapt-only rows fine-tune Scratch's pre-trained student (no init or pre-training of their
    own); the table's cells are the evaluations, with the fine-tuned source on top."""
    students = smoke_run / "results/smoke/students"
    assert not (students / "seeking/olmo/1L-tiny/seed0/init").exists()
    assert not (students / "lora/none/1L-tiny/seed0/250k/pretrain").exists()
    sft = json.loads((students / "seeking/olmo/1L-tiny/seed0/250k/sft/boolq/run.json").read_text())
    assert sft["steps"] > 0
    nosft = json.loads((students / "laten-nosft/olmo/1L-tiny/seed1/250k/sft/piqa/run.json").read_text())
    assert nosft["steps"] == 0 and nosft["config"]["sft"]["epochs"] == 0
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip().strip("|").split("|")[1:]]
            for l in (smoke_run / "reports/table_pkt.md").read_text().splitlines() if l.startswith("| ")}
    values = [json.loads((students / f"seeking/olmo/1L-tiny/seed{s}/250k/eval/boolq.json").read_text())["value"]
              for s in (0, 1)]
    assert rows["Seeking"][0].startswith(f"{sum(values) / 2:.2f} ± ")
    source = json.loads((smoke_run / "results/smoke/sources-eval/olmo/sft/boolq.json").read_text())["value"]
    assert rows["OLMo-SFT (source)"][0] == f"{source:.2f}"
    # smoke's pkt.compare_to is Seeking: the other rows' paired differences to it, then to LaTen (no SFT)
    text = (smoke_run / "reports/table_pkt.md").read_text()
    assert list(parse_table(text, 0)) == [("1L-tiny", "LaTen (no SFT)"), ("1L-tiny", "SemAlign")]
    assert "### Paired differences to LaTen (no SFT)" in text
    assert list(parse_table(text, 1)) == [("1L-tiny", "Seeking"), ("1L-tiny", "SemAlign")]
    semalign = json.loads((students / "semalign/olmo/1L-tiny/seed0/250k/sft/boolq/run.json").read_text())
    assert semalign["steps"] > 0
    assert "| Pre-Align (100): LaTen + Pre-Aligned 13B Param. | 44.40 |" in (smoke_run / "reports/table_pkt.md").read_text()


def test_pkt_table_is_planned_on_the_paper_grid(tmp_path):
    proc = snakemake(tmp_path, "-n", "reports/table_pkt.md", "--configfile", str(REPO / "config/paper.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = _job_counts(proc.stdout)
    rows, tasks = 9, 6
    # one pre-trained student (Scratch's) serves every row; the source is fine-tuned per task
    assert counts["pretrain"] == 1
    assert counts["sft"] == rows * tasks and counts["eval"] == rows
    assert counts["source_sft"] == tasks and counts["source_eval"] == 1
    assert "extract" not in counts


def _job_resources(stdout):
    """(rule, {resource: value}) of every job a dry run lists."""
    jobs, rule = [], None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("resources:") and rule:
            jobs.append((rule, dict(kv.split("=", 1) for kv in line[len("resources:"):].split(", "))))
            rule = None
    return jobs


GPU_RULES = {"extract", "pretrain", "sft", "eval", "eval_generation", "source_sft", "source_eval",
             "source_eval_generation"}


def test_slurm_profile_plans_the_paper_grid_with_every_rules_resources(tmp_path):
    """Dry run through the SLURM executor plugin: every job declares memory, wall time and GPUs;
    the training and evaluation jobs ask for a GPU, the data jobs for none. The PKT table, out of
    the paper's `all` (`all_skips`), is asked for by name: its sources' scoring is a rule of its own."""
    proc = snakemake(tmp_path, "-n", "all", "reports/table_pkt.md", "--configfile", str(REPO / "config/paper.yaml"),
                     "--workflow-profile", str(REPO / "profiles/slurm"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = [(rule, res) for rule, res in _job_resources(proc.stdout) if rule != "all"]  # `all` only lists targets
    assert len(jobs) == _job_counts(proc.stdout)["total"] - 1
    for rule, res in jobs:
        assert {"mem_mb", "runtime", "gpu"} <= set(res), (rule, res)
        assert (int(res["gpu"]) >= 1) == (rule in GPU_RULES), (rule, res)
    assert {rule for rule, _ in jobs} >= GPU_RULES
    # a source's fine-tuning asks for as many GPUs as it shards its training over
    devices = yaml.safe_load((REPO / "config/paper.yaml").read_text())["source_sft"]["devices"]
    assert {int(res["gpu"]) for rule, res in jobs if rule == "source_sft"} == {devices}


def test_micro_jobs_declare_resources_and_an_unknown_rule_is_refused(tmp_path):
    proc = snakemake(tmp_path, "-n", "reports/table1.md")
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = _job_resources(proc.stdout)
    assert jobs and all({"mem_mb", "runtime", "gpu"} <= set(res) for _, res in jobs)
    bad = tmp_path / "bad.yaml"
    bad.write_text("resources: {pretrian: {mem_mb: 10}}\n")
    proc = snakemake(tmp_path, "-n", "reports/table1.md", "--configfile", str(bad))
    assert proc.returncode != 0 and "error: config error: resources: 'pretrian' is not a rule" in proc.stderr


@pytest.mark.slow
def test_micro_real_dag_runs_on_the_released_files(tmp_path, shared_data):
    """micro-real on smoke sizes: the real corpus, tasks split from the released dev files,
    Scratch fine-tuned and evaluated on each (one shape, one seed)."""
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(f"""profile: micro-real-smoke
data_dir: {shared_data}
seeds: [0]
shapes: {{2L-tiny: null}}
methods: [{{name: scratch, label: Scratch}}]
sources: {{twin: null}}
signal: null
table2: null
figures: null
tasks:
  boolq: {{max_records: 60}}
  piqa: {{max_records: 60, max_answer_chars: 100}}
  winogrande: {{max_records: 60}}
  medmcqa: {{max_records: 60}}
""")
    proc = snakemake(tmp_path, "-j2", "reports/table1.md", "--configfile", str(REPO / "config/smoke.yaml"),
                     str(REPO / "config/micro-real.yaml"), str(tiny))
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "results/micro-real-smoke"
    assert json.loads((root / "data/corpus/run.json").read_text())["documents"] > 1000
    split = json.loads((root / "data/tasks/boolq/run.json").read_text())["records"]
    assert split == {"test": 18, "train": 42}
    table = parse_table((tmp_path / "reports/table1.md").read_text())
    assert list(table) == [("1L-tiny", "Scratch")]


@pytest.mark.xdist_group("smoke-dag")
def test_xdist_keeps_a_group_on_one_worker(request):
    """`--dist loadgroup` tags a grouped test's id with its group; without the tag (pytest 9 with
    pytest-xdist 3.8) the smoke DAG's tests are spread and every worker builds the DAG again."""
    import os

    if not getattr(request.config.option, "loadgroup", False) or "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("not run under pytest-xdist's loadgroup")
    assert request.node.nodeid.endswith("@smoke-dag"), request.node.nodeid


def test_jobs_run_the_snakefiles_own_checkout(tmp_path):
    """`snakemake -s <checkout>/Snakefile` from anywhere plans and runs with that checkout's
    `harness`, not the one the environment installed, and records that code in its outputs."""
    import os
    import shutil

    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    copy = tmp_path / "checkout"
    for f in files:
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, copy / f)
    init = copy / "harness" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.0+the-copy"'))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARNESS_FORK_SERVER")}
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "-j1", "--directory",
                           str(run), "results/smoke/data/world", "--configfile", str(copy / "config" / "smoke.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run / "results/smoke/data/world/run.json").read_text())
    assert record["code_version"] == "0.1.0+the-copy", record["code_version"]


def test_a_plan_that_does_not_fit_its_gpus_is_refused_before_any_job(tmp_path):
    """The paper profile fits 80 GB GPUs; the same grid without micro-batching (64 x 2,048 tokens
    in one forward) is refused by `snakemake -n` in one line, before anything is submitted."""
    no_micro_batch = tmp_path / "whole-batch.yaml"
    no_micro_batch.write_text("pretrain: {micro_batch: null}\n")
    fits = snakemake(tmp_path / "fits", "-n", "all", "--configfile", str(REPO / "config/paper.yaml"))
    assert fits.returncode == 0, fits.stderr[-2000:]
    refused = snakemake(tmp_path / "refused", "-n", "all", "--configfile", str(REPO / "config/paper.yaml"),
                        str(no_micro_batch))
    assert refused.returncode != 0
    line = next(l for l in refused.stderr.splitlines() if l.startswith("error:"))
    assert "the plan does not fit its GPUs: pretrain 12L-267M at 2B: needs ~120 GiB" in line
    assert "Traceback" not in refused.stderr
