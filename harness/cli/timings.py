"""Where a workflow run's time went: Snakemake's per-job benchmark files, summed per rule.

Every rule writes `benchmarks/<profile>/<rule>/....tsv` (Snakemake's `benchmark:`: wall
seconds `s`, `cpu_time`, peak memory `max_rss` in MB). `python -m harness timings --profile
micro` prints, per rule, the jobs, their wall and CPU seconds; then the run's span (first job's
start to last job's end, from each file's time and duration) against the floor its jobs allow
on the cores it had (their summed wall time / cores), and how much of the jobs' time a bare
process start-up (Python, torch, transformers: measured here) accounts for. With the profile's
config it also puts each pre-training job against its floor: the FLOPs its student needs (six per
matmul parameter per token, attention, the held-out evaluations) at this machine's measured
single-core GEMM rate, against the core-seconds the job had (its wall time times its share of the
cores while it ran, from the overlap of the jobs' intervals).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

# what every stage process imports before its work starts
STARTUP_PROBE = "import torch, transformers; from transformers import LlamaForCausalLM"


@dataclass(frozen=True)
class Job:
    rule: str
    wall: float  # seconds
    cpu: float
    end: float  # the benchmark file's modification time (written when the job ended)
    max_rss_mb: float
    name: str = ""  # the benchmark file's path under its rule's folder, without `.tsv` (the job's wildcards)

    @property
    def start(self) -> float:
        return self.end - self.wall


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0  # Snakemake writes "NA" for what it could not measure


def read_jobs(root: Path) -> list[Job]:
    """One `Job` per benchmark file under `root` (`benchmarks/<profile>`)."""
    if not root.is_dir():
        raise HarnessError(f"no benchmark files in {root}: run the workflow first (every rule writes one)")
    jobs = []
    for path in sorted(root.rglob("*.tsv")):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows or "s" not in rows[0]:
            raise HarnessError(f"malformed benchmark file {path}: expected Snakemake's header with `s`")
        row = rows[-1]
        rule, *rest = path.relative_to(root).with_suffix("").parts
        jobs.append(Job(rule, _number(row["s"]), _number(row.get("cpu_time", "NA")), path.stat().st_mtime,
                        _number(row.get("max_rss", "NA")), "/".join(rest)))
    if not jobs:
        raise HarnessError(f"no benchmark files in {root}: run the workflow first (every rule writes one)")
    return jobs


def startup_seconds(repeats: int = 3) -> float:
    """The fastest of `repeats` bare start-ups of a stage process (Python + torch + transformers)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", STARTUP_PROBE], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def summary(jobs: list[Job], cores: int, startup: float | None, forked: bool = False) -> str:
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    lines = ["| rule | jobs | wall s | CPU s | mean wall s | max RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for rule, group in sorted(by_rule.items(), key=lambda kv: -sum(j.wall for j in kv[1])):
        wall, cpu = sum(j.wall for j in group), sum(j.cpu for j in group)
        lines.append(f"| {rule} | {len(group)} | {wall:.1f} | {cpu:.1f} | {wall / len(group):.1f} | "
                     f"{max(j.max_rss_mb for j in group):.0f} |")
    total = sum(j.wall for j in jobs)
    span = max(j.end for j in jobs) - min(j.start for j in jobs)
    floor = total / cores
    lines += ["", f"{len(jobs)} jobs; their wall time sums to {total:.1f} s ({sum(j.cpu for j in jobs):.1f} s CPU).",
              f"Span, first job's start to last job's end: {span:.1f} s; the jobs' sum over {cores} cores is "
              f"{floor:.1f} s, so the span is {span / floor:.2f}x that floor."]
    if forked:
        lines.append("The jobs forked from the warm harness process (harness/workflow/forkserver.py): none paid a start-up, "
                     "and the CPU and RSS columns count only each job's thin client (`fork_server: false` to "
                     "measure them).")
    elif startup is not None:  # a job shorter than a start-up (a table) never imported torch
        share = sum(min(startup, j.wall) for j in jobs)
        lines.append(f"A bare stage process starts in {startup:.2f} s here (Python, torch, transformers): "
                     f"at most {share:.0f} s of the jobs' {total:.0f} s ({100 * share / total:.0f} %) is start-up.")
    return "\n".join(lines)


def gemm_gflops(seconds: float = 1.0, n: int = 512) -> float:
    """This machine's fp32 matmul rate on one core, GFLOP/s (the best of repeated n x n products)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        best, deadline = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    finally:
        torch.set_num_threads(threads)
    return best


def pretrain_flops(config: dict, name: str) -> float | None:
    """The FLOPs of the pre-training job whose benchmark path is `name`
    (students/{method}/{source}/{shape}/seed{seed}/{budget}/pretrain); None for another path."""
    parts = name.split("/")
    if len(parts) != 7 or parts[0] != "students" or parts[-1] != "pretrain" or parts[3] not in config["shapes"]:
        return None
    from harness.workflow.plan import matmul_params, train_flops_per_token

    shape, budget = config["shapes"][parts[3]], config["budgets"].get(parts[5])
    if budget is None:
        return None
    vocab, seq = config["tokenizer"].get("vocab_size") or config.get("plan", {}).get("vocab", 0), config["seq_len"]
    matmul, per_token = matmul_params(shape, vocab), train_flops_per_token(shape, vocab, seq)
    tokens = budget["tokens"]
    held = config.get("heldout", {})
    steps = tokens // (config["pretrain"]["batch_size"] * seq)
    evaluations = steps // held["every_steps"] + 2 if held else 0
    return per_token * tokens + 2 * matmul * held.get("sequences", 0) * seq * evaluations


def core_seconds(jobs: list[Job], cores: int) -> list[float]:
    """Each job's wall time times its share of the cores: cores / the jobs running beside it (itself
    included), averaged over its interval, at most 1."""
    out = []
    for job in jobs:
        overlap = sum(max(0.0, min(job.end, o.end) - max(job.start, o.start)) for o in jobs)
        running = overlap / job.wall if job.wall > 0 else 1.0
        out.append(job.wall * min(1.0, cores / max(running, 1.0)))
    return out


def floor_table(jobs: list[Job], config: dict, cores: int, gflops: float) -> str:
    """The pre-training jobs against their GEMM-bound floor at `gflops` per core."""
    had = dict(zip(map(id, jobs), core_seconds(jobs, cores)))
    rows = [(j, pretrain_flops(config, j.name)) for j in jobs if j.rule == "pretrain"]
    rows = [(j, f) for j, f in rows if f]
    if not rows:
        return ""
    flops, used = sum(f for _, f in rows), sum(had[id(j)] for j, _ in rows)
    floor = flops / (gflops * 1e9)
    return ("\n\n| rule | jobs | GFLOP | GEMM-bound core-s | core-s the jobs had | floor / had |\n"
            "|---|---:|---:|---:|---:|---:|\n"
            f"| pretrain | {len(rows)} | {flops / 1e9:,.0f} | {floor:,.0f} | {used:,.0f} | {floor / used:.0%} |\n\n"
            f"At {gflops:.0f} GFLOP/s per core (fp32 matmul, measured now): the jobs ran at {floor / used:.0%} of the "
            "speed their FLOPs allow.")


def timings(profile: str, cores: int, measure_startup: bool = True, root: Path = Path("benchmarks"),
            gflops: float | None = None) -> str:
    from harness.workflow.config import SAFE_NAME

    if not SAFE_NAME.fullmatch(profile):  # the name becomes a path
        raise HarnessError(f"timings: the profile name {profile!r} is not a plain name")
    jobs = read_jobs(root / profile)
    server_log = root.parent / "logs" / profile / "fork-server.log"  # Grid.L: the run started one
    forked = server_log.is_file() and server_log.stat().st_mtime >= min(j.start for j in jobs)
    text = summary(jobs, cores, None if forked or not measure_startup else startup_seconds(), forked)
    try:
        from harness.workflow.config import load_profile

        config = load_profile(profile)
    except HarnessError:  # a profile this checkout does not ship: the times alone
        return text
    return text + floor_table(jobs, config, cores, gflops or gemm_gflops())
