"""Where a workflow run's time went: Snakemake's per-job benchmark files, summed per rule.

Every rule writes `benchmarks/<profile>/<rule>/....tsv` (Snakemake's `benchmark:`: wall
seconds `s`, `cpu_time`, peak memory `max_rss` in MB). `python -m harness timings --profile
micro` prints, per rule, the jobs, their wall and CPU seconds; then the run's span (first job's
start to last job's end, from each file's time and duration) against the floor its jobs allow
on the cores it had (their summed wall time / cores), and how much of the jobs' time a bare
process start-up (Python, torch, transformers: measured here) accounts for.
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
        jobs.append(Job(path.relative_to(root).parts[0], _number(row["s"]), _number(row.get("cpu_time", "NA")),
                        path.stat().st_mtime, _number(row.get("max_rss", "NA"))))
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


def timings(profile: str, cores: int, measure_startup: bool = True, root: Path = Path("benchmarks")) -> str:
    from harness.workflow.config import SAFE_NAME

    if not SAFE_NAME.fullmatch(profile):  # the name becomes a path
        raise HarnessError(f"timings: the profile name {profile!r} is not a plain name")
    jobs = read_jobs(root / profile)
    server_log = root.parent / "logs" / profile / "fork-server.log"  # Grid.L: the run started one
    forked = server_log.is_file() and server_log.stat().st_mtime >= min(j.start for j in jobs)
    return summary(jobs, cores, None if forked or not measure_startup else startup_seconds(), forked)
