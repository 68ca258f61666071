"""`python -m harness <stage> ...`: the one entry point every Snakemake rule calls.

`--cfg` takes the stage's slice of the resolved config as JSON (Snakemake
passes it inline; by hand, `--cfg @file.json` reads a file). Errors the user
can fix print one line, `error: ...`, and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

from harness.errors import HarnessError
from harness.workflow.commands import THEN  # `stage ... :: stage ...`: several stages, in turn, in one process


def parse_cfg(value: str) -> dict:
    """--cfg's JSON object, inline or from `@file.json`; anything else is a one-line error."""
    where = value[1:] if value.startswith("@") else "--cfg"
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
        cfg = json.loads(text)
    except OSError as e:
        raise HarnessError(f"--cfg: cannot read {where}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise HarnessError(f"--cfg: {where} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(cfg, dict):
        raise HarnessError(f"--cfg: {where} holds a JSON {type(cfg).__name__}, not an object (the stage's config)")
    return StageConfig.of(cfg, where)


class StageConfig(dict):
    """A stage's --cfg: a dict whose missing key is a one-line error naming it and the config,
    not a KeyError deep inside the stage (a hand-written or truncated --cfg)."""

    where: str = "--cfg"
    path: str = ""

    @classmethod
    def of(cls, value, where: str, path: str = ""):
        if isinstance(value, dict):
            out = cls({k: cls.of(v, where, f"{path}.{k}" if path else str(k)) for k, v in value.items()})
            out.where, out.path = where, path
            return out
        if isinstance(value, list):
            return [cls.of(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def __missing__(self, key):
        raise HarnessError(f"{self.where}: the stage's config lacks `{f'{self.path}.{key}' if self.path else key}` "
                           f"(write it with the workflow: snakemake runs each stage with its full config)")


# A disk that fills or a folder that refuses writes is the user's to fix, not a bug: one line.
USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


# How libraries that write through their own code say a write failed: torch.save's stream writer,
# safetensors' Rust I/O error (errno 28: no space; 122: quota; 13: permission; 30: read-only)
WRITE_FAILURES = ("No space left on device", "Disk quota exceeded", "file write failed", "Read-only file system",
                  "StorageFull", "code: 28,", "code: 122,", "PytorchStreamWriter", "basic_ios::clear")


def write_failure(error: BaseException) -> str | None:
    """The reason, if `error` (or what caused it) is a failed write the user must fix; else None."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in USER_OS_ERRORS:
            return seen.strerror
        text = str(seen)
        for marker in WRITE_FAILURES:
            if marker in text:
                return "no space left on device" if marker in ("StorageFull", "code: 28,") else \
                    text.strip().splitlines()[-1][:200]
        seen = seen.__cause__ or seen.__context__
    return None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _opt_path(value: str) -> Path | None:
    return None if value in ("", "none", "None") else Path(value)


class Arg(NamedTuple):
    """One argument of a stage: `--flag` on the command line, `param` of the stage's function."""

    flag: str
    param: str
    kind: str = "path"  # path | path? (optional: "none" or "" for none) | paths+ | paths* | int | str
    help: str | None = None


class Stage(NamedTuple):
    """A stage a rule runs: its function ("module:function", imported when it runs, called as
    `function(cfg, **args)`) and its arguments, from which its parser is built."""

    help: str
    function: str
    args: tuple[Arg, ...]


def _a(flag: str, param: str | None = None, kind: str = "path", help: str | None = None) -> Arg:
    """An `Arg` whose parameter is named like its flag unless given (`--tokens` -> `tokens_file`)."""
    return Arg(flag, param or flag.replace("-", "_"), kind, help)


# Every stage a Snakemake rule runs, declared once: the parser and the dispatch are built from it.
STAGES: dict[str, Stage] = {
    "world": Stage("generate the micro world (corpus + tasks)", "harness.stages.build:world", (_a("out"),)),
    "tokenizer": Stage("train (or copy) the tokenizer", "harness.stages.build:tokenizer", (_a("corpus"), _a("out"))),
    "tokens": Stage("tokenise the pre-training corpus", "harness.stages.build:tokens",
                    (_a("corpus"), _a("tokenizer", "tokenizer_dir"), _a("out"))),
    "source": Stage("resolve or pre-train a source LLM", "harness.stages.build:source",
                    (_a("name", kind="str"), _a("tokenizer", "tokenizer_dir"), _a("tokens", "tokens_file"), _a("out"))),
    "extract": Stage("a method's once-per-source extraction", "harness.stages.build:extract",
                     (_a("source", "source_dir"), _a("out"), _a("tokens", "tokens_file", "path?"),
                      _a("tasks", "task_dirs", "paths*", "task directories (train splits)"),
                      _a("domains", "domains_dir", "path?"))),
    "init": Stage("initialise a student", "harness.stages.build:init",
                  (_a("tokenizer", "tokenizer_dir"), _a("seed", kind="int"), _a("out"),
                   _a("source", "source_dir", "path?"), _a("artifact", kind="path?"))),
    "pretrain": Stage("pre-train a student on a token budget: the one --init holds, or the one --cfg describes",
                      "harness.stages.build:pretrain",
                      (_a("tokens", "tokens_file"), _a("seed", kind="int"), _a("out"),
                       _a("source", "source_dir", "path?"), _a("init", "init_dir", "path?"),
                       _a("tokenizer", "tokenizer_dir", "path?"), _a("artifact", kind="path?"))),
    # --cfg's `tasks` holds one task slice per (--task, --out) pair
    "sft": Stage("adapt + fine-tune a student on each of its tasks, one output per task", "harness.stages.build:sft_tasks",
                 (_a("pretrained", "pretrained_dir"), _a("seed", kind="int"), _a("source", "source_dir", "path?"),
                  _a("task", "task_dirs", "paths+"), _a("out", "outs", "paths+"))),
    "eval": Stage("multiple-choice accuracy of fine-tuned students, one per task", "harness.stages.evaluate:evaluate",
                  (_a("models", "model_dirs", "paths+"), _a("tasks", "task_dirs", "paths+"), _a("outs", kind="paths+"),
                   _a("pretrained", kind="path?", help="the student before SFT, scored zero-shot on every task"),
                   _a("zeroshot-outs", kind="paths*"),
                   _a("paraphrase-outs", kind="paths*",
                      help="the fine-tuned students on each task's paraphrase split (held-out phrasing)"))),
    "eval-untrained": Stage("multiple-choice accuracy of the student --cfg describes, before pre-training",
                            "harness.stages.evaluate:evaluate_untrained",
                            (_a("tokenizer", "tokenizer_dir"), _a("seed", kind="int"),
                             _a("source", "source_dir", "path?"), _a("artifact", kind="path?"),
                             _a("tasks", "task_dirs", "paths+"), _a("outs", kind="paths+"))),
    "eval-generation": Stage("Rouge-L of fine-tuned students on generation tasks, one per task",
                             "harness.stages.evaluate:evaluate_generation",
                             (_a("models", "model_dirs", "paths+"), _a("tasks", "task_dirs", "paths+"),
                              _a("outs", kind="paths+"))),
    "instruction-task": Stage("a generation task's splits (micro world or files)", "harness.data.task_data:instruction_task",
                              (_a("out"),)),
    "corpus": Stage("collect pre-training text from local files or a hub dataset", "harness.data.corpus:corpus",
                    (_a("out"),)),
    "export-task": Stage("export an lm-eval task's splits as {query, choices, gold} records",
                         "harness.data.task_data:export_task", (_a("out"),)),
}

_KINDS = {"path": dict(type=Path, required=True), "path?": dict(type=_opt_path, default=None),
          "paths+": dict(type=Path, nargs="+", required=True), "paths*": dict(type=Path, nargs="*", default=[]),
          "int": dict(type=int, required=True), "str": dict(required=True)}


def _call(target: str, *args, **kwargs):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(*args, **kwargs)


def _run_stage(args) -> None:
    stage = STAGES[args.stage]
    _call(stage.function, args.cfg, **{a.param: getattr(args, a.param) for a in stage.args})


# ---------------------------------------------------------------- tools (not rules' stages)

def _report(args) -> None:
    from harness.workflow.report import load_report

    load_report(args.table).render(args.cfg, args.inputs, args.out)


def _bench(args) -> None:
    from harness.cli.bench import bench

    compile = {"true": True, "false": False}.get(args.compile, args.compile)
    bench(args.profile, args.shape, args.steps, compile=compile, seeds=args.seeds, ops=args.ops)


def _bench_moe(args) -> None:
    import torch

    from harness.cli.bench import bench_moe

    torch.set_num_threads(args.threads)
    print(bench_moe(args.profile, args.steps), end="")


def _timings(args) -> None:
    from harness.cli.timings import timings

    print(timings(args.profile, args.cores, not args.no_startup, gflops=args.gflops))


def _validate(args) -> None:
    from harness.workflow.config import describe, load_profile

    print(describe(load_profile(args.profile)))


def _plan(args) -> None:
    from harness.workflow.config import load_profile
    from harness.workflow.plan import problems, table

    config = load_profile(args.profile)
    print(table(config), end="")
    found = problems(config)
    if found:
        raise HarnessError(f"{len(found)} job class(es) do not fit: " + "; ".join(found[:3]))


def _config_reference(args) -> None:
    from harness.workflow.config_reference import reference
    from harness.io import atomic_write_text

    atomic_write_text(args.out, reference()) if args.out else print(reference(), end="")


def _fetch_corpus(args) -> None:
    from harness.data.fetch import fetch

    got = fetch(args.release, args.out, args.subsets, args.max_files, args.base_url, args.listing)
    print(f"fetch-corpus: {len(got)} files of RedPajama-{args.release.upper()} under {args.out}")


def _gpu_check(args) -> None:
    from harness.cli.gpu_check import run

    report = run(args.out, args.device, args.tiny, args.repeats)
    for job in report["pretrain"]:
        print(f"gpu-check: pretrain {job['shape']}: MFU {job['mfu']:.2f}, peak {job['measured_peak_gib'] or 0:.1f} GiB "
              f"(estimate {job['estimate_gib']:.1f})")
    print(f"gpu-check: {args.out} written on {report['device']}")


def _paper_toy(args) -> None:
    from harness.cli.paper_toy import write

    write(args.out)


def _serve(args) -> None:
    from harness.workflow.forkserver import serve

    serve(args.socket, main, args.parent)  # each forked child runs `main` on its caller's arguments


def _planning_tools(sub) -> None:
    """The subcommands for a cluster run's preparation: plan, config reference, corpus fetch, GPU
    check, the paper-toy stand-ins."""
    pl = sub.add_parser("plan", help="every job's estimated GPU memory and time against the profile's "
                                     "`plan:` and `resources:` (harness/workflow/plan.py)")
    pl.add_argument("--profile", default="micro", help="config profile name or YAML path")
    pl.set_defaults(func=_plan)

    ref = sub.add_parser("config-reference", help="every config key, its default and meaning (docs/config.md)")
    ref.add_argument("--out", type=Path, default=None, help="write it here (default: print it)")
    ref.set_defaults(func=_config_reference)

    fc = sub.add_parser("fetch-corpus", help="download RedPajama's files into the folder the paper profile reads "
                                             "(harness/data/fetch.py; resumable)")
    fc.add_argument("--release", choices=("1t", "v2"), default="1t", help="1t: the paper profile's reading (default)")
    fc.add_argument("--out", type=Path, default=Path("data/redpajama-1t"), help="the corpus folder (`corpus.path`)")
    fc.add_argument("--subsets", nargs="+", default=None, help="1t: only these subsets")
    fc.add_argument("--max-files", type=_positive, default=None, help="at most this many files of each subset")
    fc.add_argument("--base-url", default=None, help="a mirror of the release root")
    fc.add_argument("--listing", default=None, help="the file list (URL or file:// path) instead of the release's")
    fc.set_defaults(func=_fetch_corpus)

    gc = sub.add_parser("gpu-check", help="measure what the paper plan assumes on this GPU in a few minutes, "
                                          "random weights (harness/cli/gpu_check.py)")
    gc.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="the JSON written")
    gc.add_argument("--device", default=None, help="default: cuda if present")
    gc.add_argument("--tiny", action="store_true", help="toy sizes: the same code on any device")
    gc.add_argument("--repeats", type=_positive, default=3, help="timed steps of each job")
    gc.set_defaults(func=_gpu_check)

    toy = sub.add_parser("paper-toy", help="tiny stand-ins and data at the paper profile's paths "
                                           "(config/paper-toy.yaml)")
    toy.add_argument("--out", type=Path, default=Path("."), help="the directory Snakemake will run in")
    toy.set_defaults(func=_paper_toy)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=_positive, default=int(os.environ.get("HARNESS_THREADS", 1)),
                   help="torch CPU threads (Snakemake passes the rule's `threads`)")
    sub = p.add_subparsers(dest="stage", required=True)
    for name, stage in STAGES.items():
        s = sub.add_parser(name, help=stage.help)
        s.add_argument("--cfg", required=True, help="stage config: JSON or @file.json")
        for a in stage.args:
            s.add_argument(f"--{a.flag}", dest=a.param, metavar=a.flag.upper(), help=a.help, **_KINDS[a.kind])
        s.set_defaults(func=_run_stage)

    r = sub.add_parser("report", help="render a table from evaluation JSON")
    r.add_argument("table", help="table name, e.g. table1")
    r.add_argument("--cfg", required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("inputs", nargs="+", type=Path, help="evaluation JSON files")
    r.set_defaults(func=_report)

    b = sub.add_parser("bench", help="student pre-training throughput vs GEMM bound and a plain loop")
    b.add_argument("--profile", default="micro", help="config profile name or YAML path")
    b.add_argument("--shape", default=None, help="student shape (default: the profile's largest)")
    b.add_argument("--steps", type=int, default=30)
    b.add_argument("--compile", default=None, help="torch.compile the harness loop: true (inductor), false, or a "
                   "backend (default: the profile's pretrain.compile)")
    b.add_argument("--seeds", type=int, default=1, help="also time the plain loop over this many seeds' models "
                   "stacked into one (torch.func.vmap)")
    b.add_argument("--ops", type=int, default=0, help="also list the plain loop's N costliest operators per step "
                   "(PyTorch's profiler)")
    b.set_defaults(func=_bench)

    bm = sub.add_parser("bench-moe", help="each source's training step per experts implementation, per active "
                                          "FLOP against the dense source's (harness/cli/bench.py)")
    bm.add_argument("--profile", default="micro", help="config profile name or YAML path")
    bm.add_argument("--steps", type=_positive, default=5, help="timed steps per round")
    bm.set_defaults(func=_bench_moe)

    t = sub.add_parser("timings", help="where a workflow run's time went, from its benchmark files")
    t.add_argument("--profile", default="micro")
    t.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="the cores the run had (its -j, if fewer)")
    t.add_argument("--no-startup", action="store_true", help="skip timing a bare process start-up")
    t.add_argument("--gflops", type=float, default=None, help="a core's fp32 GEMM rate (default: measured now)")
    t.set_defaults(func=_timings)

    v = sub.add_parser("validate", help="validate a config profile and print the run grid")
    v.add_argument("--profile", default="micro")
    v.set_defaults(func=_validate)

    fs = sub.add_parser("serve", help="a warm process that forks every `python -m harness` run whose environment "
                                      "names its socket in HARNESS_FORK_SERVER (harness/workflow/forkserver.py)")
    fs.add_argument("--socket", required=True, help="the Unix socket to listen on")
    fs.add_argument("--parent", type=int, default=None, help="stop when this process is gone (default: the one "
                                                              "that started this)")
    fs.set_defaults(func=_serve)

    _planning_tools(sub)
    return p


TRAINING_STAGES = ("source", "pretrain", "sft")
LIGHT_STAGES = ("validate", "report", "timings", "serve", "config-reference", "plan", "fetch-corpus")  # no torch threads, no GPU claim
METHOD_STAGES = ("extract", "init", "pretrain", "sft", "eval-untrained")  # their cfg's `method` is a registry name


def training_devices(cfg: dict) -> int:
    """Processes a training stage runs on: its training section's `devices` (default 1); an SFT
    job's sections are in its task slices."""
    sections = [cfg, *cfg.get("tasks", [])]
    return max(c.get(section, {}).get("devices", 1) for c in sections for section in ("training", "pretrain", "sft"))


def parse_chain(argv: list[str]) -> list[argparse.Namespace]:
    """The stages of one command line, split at `::` (the global `--threads` goes before the
    first): a job that fine-tunes and then evaluates pays Python's and torch's start-up once."""
    segments, current = [], []
    for word in argv:
        if word == THEN:
            segments.append(current)
            current = []
        else:
            current.append(word)
    segments.append(current)
    parser = _parser()
    first = parser.parse_args(segments[0])
    rest = [parser.parse_args(["--threads", str(first.threads), *seg]) for seg in segments[1:]]
    return [first, *rest]


def _check(chain: list[argparse.Namespace]) -> None:
    """Each stage's --cfg parsed, and the method it names looked up in the registry (data, no
    plugin import): a mistyped name fails in a fraction of a second, before torch is imported."""
    from harness.api.registry import method_spec

    for args in chain:
        if getattr(args, "cfg", None) is not None:
            args.cfg = parse_cfg(args.cfg)
            if args.stage in METHOD_STAGES and "method" in args.cfg:
                method_spec(args.cfg["method"])


def _prepare(chain: list[argparse.Namespace]) -> None:
    training = [a for a in chain if a.stage in TRAINING_STAGES]
    if training:  # `devices: N` re-runs this command as N processes
        from harness.training import distributed

        devices = max(training_devices(a.cfg) for a in training)
        if devices > 1 and len(chain) > 1:
            raise HarnessError(f"{' :: '.join(a.stage for a in chain)}: a stage on {devices} devices runs alone "
                               f"(set `sft_jobs: task` for multi-device fine-tuning)")
        distributed.relaunch(devices)
        distributed.init()
    if any(a.stage not in LIGHT_STAGES for a in chain) and "WORLD_SIZE" not in os.environ:
        from harness.training.devices import claim_gpu

        claim_gpu()


def main(argv: list[str] | None = None) -> int:
    chain = parse_chain(sys.argv[1:] if argv is None else argv)
    threads = chain[0].threads
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        _check(chain)
        if any(a.stage not in LIGHT_STAGES for a in chain):
            import torch

            torch.set_num_threads(threads)
        _prepare(chain)
        for args in chain:
            args.func(args)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in USER_OS_ERRORS:
            raise
        print(f"error: {e.strerror}: {e.filename or 'a file of this stage'} (nothing was left half-written)",
              file=sys.stderr)
        return 2
    except Exception as e:  # a library's own error for a failed write (torch.save, safetensors)
        reason = write_failure(e)
        if reason is None:
            raise
        print(f"error: an output could not be written: {reason} (nothing was left half-written)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
