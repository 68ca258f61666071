"""Where a workflow run's time went: Snakemake's per-job benchmark files, summed per rule.

Every rule writes `benchmarks/<profile>/<rule>/....tsv` (Snakemake's `benchmark:`: wall
seconds `s`, `cpu_time`, peak memory `max_rss` in MB). `python -m harness timings --profile
micro` prints, per rule, the jobs, their wall and CPU seconds; then the run's span (first job's
start to last job's end, from each file's time and duration) against the floor its jobs allow
on the cores it had (their summed wall time / cores), and how much of the jobs' time a bare
process start-up (Python, torch, transformers: measured here) accounts for. With the profile's
config it also puts each rule's jobs against their floor (`Floors`: pre-training, fine-tuning with
its evaluations, the sources): the FLOPs they need at this machine's measured single-core GEMM
rate, against the core-seconds the jobs had (each one's wall time times its share of the cores
while it ran, from the overlap of the jobs' intervals); and the whole run's FLOPs against its span.
"""

from __future__ import annotations

import csv
import json
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


def core_seconds(jobs: list[Job], cores: int) -> list[float]:
    """Each job's wall time times its share of the cores: cores / the jobs running beside it (itself
    included), averaged over its interval, at most 1."""
    out = []
    for job in jobs:
        overlap = sum(max(0.0, min(job.end, o.end) - max(job.start, o.start)) for o in jobs)
        running = overlap / job.wall if job.wall > 0 else 1.0
        out.append(job.wall * min(1.0, cores / max(running, 1.0)))
    return out


def forward_flops(shape: dict, vocab: int, n: int) -> int:
    """One forward over a sequence of `n` tokens: 2 per matmul parameter per token, and
    attention's scores and mixing, 4 * hidden * n^2 a layer (the causal mask's zeros counted,
    as a dense kernel computes them)."""
    from harness.workflow.plan import matmul_params

    return 2 * matmul_params(shape, vocab) * n + 4 * shape["layers"] * shape["hidden"] * n * n


class Floors:
    """The FLOPs of the jobs a run's benchmark files name, per rule, from the profile's config and
    the run's own files in `run_dir` (the sources' token counts, the tasks' splits, the tokenizer):

    - `pretrain`: the student's forward and backward over the budget (`train_flops_per_token`), the
      held-out evaluations, and a distilling method's teacher forward;
    - `sft`: each task's fine-tuning over its train split (sequences as SFT cuts them) and each
      evaluation pass the job wrote (zero-shot, after SFT, paraphrase): one forward per choice over
      query and choice, as lm-eval scores them;
    - `source`: the source's training tokens at its active FLOPs per token (a MoE's top-k experts).

    Another rule's job, or one whose files are missing, is None (not estimated)."""

    def __init__(self, config: dict, run_dir: Path):
        from harness.workflow.grid import Grid

        self.config, self.run, self.grid = config, run_dir, Grid(config)
        self.vocab = config["tokenizer"].get("vocab_size") or config.get("plan", {}).get("vocab", 0)
        self._tok = None
        self._lengths: dict[tuple[str, str], list[int]] = {}

    def __call__(self, job: Job) -> float | None:
        rule = {"pretrain": self.pretrain, "sft": self.sft, "source": self.source}.get(job.rule)
        try:
            return rule(job.name) if rule else None
        except (HarnessError, OSError):  # the run's folder lacks a file the estimate reads (tasks, tokenizer)
            return None

    def _student(self, name: str, stage: str) -> dict | None:
        """The wildcards of a student job's benchmark path, students/{method}/{source}/{shape}/
        seed{seed}/{budget}/pretrain or .../sft/{group}; None for another path."""
        parts = name.split("/")
        if (len(parts) != {"pretrain": 7, "sft": 8}[stage] or parts[0] != "students" or parts[6] != stage
                or parts[3] not in self.config["shapes"] or parts[5] not in self.config["budgets"]):
            return None
        return {"method": parts[1], "source": parts[2], "shape": parts[3], "seed": parts[4].removeprefix("seed"),
                "budget": parts[5]}

    def pretrain(self, name: str) -> float | None:
        from harness.workflow.plan import DISTILLING, active_flops_per_token, matmul_params, train_flops_per_token

        w = self._student(name, "pretrain")
        if w is None:
            return None
        shape, seq, tokens = self.config["shapes"][w["shape"]], self.config["seq_len"], \
            self.config["budgets"][w["budget"]]["tokens"]
        held = self.config.get("heldout", {})
        steps = tokens // (self.config["pretrain"]["batch_size"] * seq)
        evaluations = steps // held["every_steps"] + 2 if held.get("every_steps") else 0
        flops = (train_flops_per_token(shape, self.vocab, seq) * tokens
                 + 2 * matmul_params(shape, self.vocab) * held.get("sequences", 0) * seq * evaluations)
        if w["method"] in DISTILLING and w["source"] in self.config["sources"]:
            flops += active_flops_per_token(self.config["sources"][w["source"]], self.vocab, seq) // 3 * tokens
        return flops

    def source(self, name: str) -> float | None:
        from harness.workflow.plan import active_flops_per_token

        parts = name.split("/")
        record = self.run / self.grid.path("source", source=parts[-1]) / "source.json"
        if len(parts) != 2 or parts[-1] not in self.config["sources"] or not record.is_file():
            return None
        tokens = json.loads(record.read_text()).get("tokens")
        seq = self.config.get("source_training", {}).get("seq_len", self.config["seq_len"])
        return active_flops_per_token(self.config["sources"][parts[-1]], self.vocab, seq) * tokens if tokens else None

    def lengths(self, task: str, split: str) -> list[int]:
        """Token counts of `task`'s `split`: a train split's SFT sequences (prompt and answer, EOS
        included), a test split's lm-eval requests (query and choice, one per choice, less the last
        token, which lm-eval never feeds)."""
        if (task, split) not in self._lengths:
            from harness.data.batches import sft_pairs
            from harness.data.tasks import TARGET_DELIMITER, Task
            from harness.data.tokenizer import load_tokenizer

            if self._tok is None:
                self._tok = load_tokenizer(self.run / self.grid.TOKENIZER)
            records = Task(task, self.run / self.grid.task_path(task)).records(split)
            if split == "train":
                self._lengths[task, split] = [len(p) + len(a) for p, a in sft_pairs(self._tok, records)]
            else:
                texts = [r["query"] + TARGET_DELIMITER + c for r in records for c in r["choices"]]
                self._lengths[task, split] = [len(ids) - 1 for ids in
                                              self._tok(texts, add_special_tokens=False)["input_ids"]]
        return self._lengths[task, split]

    def sft(self, name: str) -> float | None:
        w = self._student(name, "sft")
        if w is None or name.split("/")[-1] != "multiple_choice" or not self.grid.mc_tasks:
            return None
        shape, section = self.config["shapes"][w["shape"]], self.config["sft"]
        train = lambda n: 3 * forward_flops(shape, self.vocab, n)  # noqa: E731 (forward and backward)
        flops = 0
        for task in self.grid.mc_tasks:
            lengths = [min(n, section["max_len"]) for n in self.lengths(task, "train")]
            flops += section["epochs"] * sum(map(train, lengths))
            for path, split in (("eval_zeroshot", "test"), ("eval", "test"), ("eval_paraphrase", "paraphrase")):
                if (self.run / self.grid.path(path, task=task, **w)).is_file():
                    flops += sum(forward_flops(shape, self.vocab, n) for n in self.lengths(task, split))
        return flops


def floor_table(jobs: list[Job], floors, cores: int, gflops: float, rate_source: str = "measured now") -> str:
    """Each rule's jobs against their GEMM-bound floor at `gflops` per core: the core-seconds their
    FLOPs (`floors(job)`) need at that rate against the core-seconds the jobs had; then the whole
    run's, against its span on `cores`."""
    had = dict(zip(map(id, jobs), core_seconds(jobs, cores)))
    lines = ["| rule | jobs | GFLOP | GEMM-bound core-s | core-s the jobs had | floor / had |",
             "|---|---:|---:|---:|---:|---:|"]
    by_rule: dict[str, list[Job]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    total_flops, unestimated = 0.0, []
    for rule, group in sorted(by_rule.items(), key=lambda kv: -sum(had[id(j)] for j in kv[1])):
        flops = [floors(j) for j in group]
        used = sum(had[id(j)] for j in group)
        if not any(flops):
            unestimated.append(f"{rule} ({used:,.0f} core-s)")
            continue
        rule_flops = sum(f for f in flops if f)
        counted = sum(had[id(j)] for j, f in zip(group, flops) if f)
        total_flops += rule_flops
        floor = rule_flops / (gflops * 1e9)
        lines.append(f"| {rule} | {sum(map(bool, flops))} | {rule_flops / 1e9:,.0f} | {floor:,.0f} | {counted:,.0f} | "
                     f"{floor / counted:.0%} |")
    if total_flops == 0:
        return ""
    span = max(j.end for j in jobs) - min(j.start for j in jobs)
    floor_span = total_flops / (gflops * 1e9 * cores)
    return ("\n\n" + "\n".join(lines) + f"\n\nAt {gflops:.0f} GFLOP/s per core (fp32 matmul, {rate_source}). "
            f"The estimated jobs' FLOPs need {floor_span:,.0f} s on {cores} cores at that rate; the run's span was "
            f"{span:,.0f} s ({floor_span / span:.0%} of it at the floor)."
            + (f" Not estimated: {', '.join(unestimated)}." if unestimated else ""))


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
    rate, source = (gflops, "as given") if gflops else (gemm_gflops(), "measured now")
    return text + floor_table(jobs, Floors(config, root.parent), cores, rate, source)
