"""The paper-toy profile (config/paper-toy.yaml over config/paper.yaml): the paper's DAG job for
job at toy size, its sources tiny stand-ins with the real checkpoints' quirks (harness/cli/paper_toy.py).
The whole of `all` runs end to end on a CPU (docs/measurements/); here the plans are compared and
the jobs that meet each quirk run."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
PAPER = ["--configfile", str(REPO / "config/paper.yaml")]
TOY = [*PAPER, str(REPO / "config/paper-toy.yaml")]


def snakemake(workdir, *args, timeout=1800):
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=timeout)


def planned_jobs(stdout: str, profile: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards, outputs) of every job a dry run lists, the profile's directory named alike."""
    jobs, job = [], None
    for line in [*stdout.splitlines(), "rule end:"]:
        line = line.strip()
        if line.startswith(("rule ", "localrule ")):
            if job:
                jobs.append((job["rule"], job.get("wildcards", ""), job.get("output", "")))
            job = {"rule": line.split()[1].rstrip(":")}
        elif job and line.startswith(("output:", "wildcards:")):
            key, _, value = line.partition(":")
            job[key] = value.strip().replace(f"/{profile}/", "/<profile>/")
    return sorted(jobs)


def test_the_toy_plans_the_papers_dag_job_for_job(tmp_path):
    paper = snakemake(tmp_path / "paper", "-n", "all", *PAPER)
    toy = snakemake(tmp_path / "toy", "-n", "all", *TOY)
    assert paper.returncode == 0 and toy.returncode == 0, (paper.stderr[-2000:], toy.stderr[-2000:])
    paper_jobs, toy_jobs = planned_jobs(paper.stdout, "paper"), planned_jobs(toy.stdout, "paper-toy")
    assert len(paper_jobs) > 850 and toy_jobs == paper_jobs


def test_the_toy_overlay_changes_sizes_and_paths_never_a_name():
    from harness.workflow.config import load_profile

    paper, toy = load_profile("paper"), load_profile("paper", "paper-toy")
    for section in ("shapes", "sources", "budgets", "tasks", "generation_tasks"):
        assert list(toy[section]) == list(paper[section]), section
    assert [r.get("label") for r in toy["methods"]] == [r.get("label") for r in paper["methods"]]
    assert toy["sft_jobs"] == paper["sft_jobs"] == "task" and toy["seeds"] == paper["seeds"]


@pytest.mark.slow
@pytest.mark.xdist_group("paper-toy")
def test_the_jobs_that_meet_each_checkpoint_quirk_run(tmp_path):
    """Distillation from the padded OLMo (more embedding rows than tokens), Pruning-EEP from the
    padded OLMoE, MASA from the DeepSeekMoE-layout checkpoint on its own tokenizer's stream, and
    Figure 4's single-domain alignment on a RedPajama subset (SFT and evaluation: the smoke DAG)."""
    from harness.cli.paper_toy import write

    write(tmp_path)
    student = "results/paper-toy/students/{}/12L-267M/seed0/2B"
    targets = [student.format("distill/olmo") + "/pretrain", student.format("pruning-eep/olmoe") + "/pretrain",
               student.format("masa/deepseek") + "/pretrain",
               "results/paper-toy/artifacts/masa-domain-wikipedia/olmo"]
    proc = snakemake(tmp_path, "-j2", *targets, *TOY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "results/paper-toy"
    # the DeepSeek stand-in read the corpus in its own ids, not OLMo's
    own, shared = (json.loads((root / f"data/{f}.json").read_text()) for f in ("tokens-deepseek", "tokens"))
    assert own["tokenizer"] != shared["tokenizer"]
    manifest = json.loads((root / "artifacts/masa/deepseek/manifest.json").read_text())
    assert manifest["extracted"] and "layers.0.up" in manifest["r"]  # the dense first layer aligned too
    # RedPajama-1T's layout: seven subsets read in turn, the non-English Wikipedia left out
    corpus = json.loads((root / "data/corpus/run.json").read_text())
    assert set(corpus["domains"]) == {"arxiv", "book", "c4", "common_crawl", "github", "stackexchange", "wikipedia"}
    assert "deutscher" not in (root / "data/corpus/corpus.txt").read_text()
    for method in ("distill/olmo", "pruning-eep/olmoe", "masa/deepseek"):
        run = json.loads((root / f"students/{method}/12L-267M/seed0/2B/pretrain/run.json").read_text())
        assert run["final_loss"] > 0
