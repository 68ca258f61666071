"""`python -m harness <stage> ...`: the one entry point every Snakemake rule calls.

`--cfg` takes the stage's slice of the resolved config as JSON (Snakemake
passes it inline; by hand, `--cfg @file.json` reads a file). Errors the user
can fix print one line, `error: ...`, and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.workflow import THEN  # `stage ... :: stage ...`: several stages, in turn, in one process


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
    return cfg


# A disk that fills or a folder that refuses writes is the user's to fix, not a bug: one line.
USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def _opt_path(value: str) -> Path | None:
    return None if value in ("", "none", "None") else Path(value)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=int(os.environ.get("HARNESS_THREADS", 1)),
                   help="torch CPU threads (Snakemake passes the rule's `threads`)")
    sub = p.add_subparsers(dest="stage", required=True)

    def stage(name, help_, *args):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--cfg", required=True, help="stage config: JSON or @file.json")
        for a in args:  # `x_opt`: an optional --x ("none" or "" for none)
            name, optional = a.removesuffix("_opt"), a.endswith("_opt")
            kind = {"seed": int}.get(name, Path)
            s.add_argument(f"--{name.replace('_', '-')}", type=_opt_path if optional else kind, dest=name,
                           required=not optional, default=None)
        return s

    stage("world", "generate the micro world (corpus + tasks)", "out")
    stage("tokenizer", "train (or copy) the tokenizer", "corpus", "out")
    stage("tokens", "tokenise the pre-training corpus", "corpus", "tokenizer", "out")
    stage("source", "resolve or pre-train a source LLM", "tokenizer", "tokens", "out").add_argument(
        "--name", required=True)
    ex = stage("extract", "a method's once-per-source extraction", "source", "out", "tokens_opt", "domains_opt")
    ex.add_argument("--tasks", type=Path, nargs="*", default=[], help="task directories (train splits)")
    stage("init", "initialise a student", "tokenizer", "seed", "out", "source_opt", "artifact_opt")
    stage("pretrain", "pre-train a student on a token budget: the one --init holds, or the one --cfg describes",
          "tokens", "seed", "out", "source_opt", "init_opt", "tokenizer_opt", "artifact_opt")
    ft = stage("sft", "adapt + fine-tune a student on each of its tasks, one output per task", "pretrained", "seed",
               "source_opt")
    for a in ("task", "out"):  # --cfg's `tasks` holds one task slice per pair
        ft.add_argument(f"--{a}", type=Path, nargs="+", required=True)
    for name, help_ in [("eval", "multiple-choice accuracy of fine-tuned students, one per task"),
                        ("eval-generation", "Rouge-L of fine-tuned students on generation tasks, one per task")]:
        ev = stage(name, help_)
        for a in ("models", "tasks", "outs"):
            ev.add_argument(f"--{a}", type=Path, nargs="+", required=True)
        if name == "eval":
            ev.add_argument("--pretrained", type=_opt_path, default=None,
                            help="the student before SFT, scored zero-shot on every task")
            ev.add_argument("--zeroshot-outs", type=Path, nargs="+", default=[], dest="zeroshot_outs")
            ev.add_argument("--paraphrase-outs", type=Path, nargs="+", default=[], dest="paraphrase_outs",
                            help="the fine-tuned students on each task's paraphrase split (held-out phrasing)")
    ut = stage("eval-untrained", "multiple-choice accuracy of the student --cfg describes, before pre-training",
               "tokenizer", "seed", "source_opt", "artifact_opt")
    for a in ("tasks", "outs"):
        ut.add_argument(f"--{a}", type=Path, nargs="+", required=True)
    stage("instruction-task", "a generation task's splits (micro world or files)", "out")
    stage("corpus", "collect pre-training text from local files or a hub dataset", "out")
    stage("export-task", "export an lm-eval task's splits as {query, choices, gold} records", "out")

    r = sub.add_parser("report", help="render a table from evaluation JSON")
    r.add_argument("table", help="table name, e.g. table1")
    r.add_argument("--cfg", required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("inputs", nargs="+", type=Path, help="evaluation JSON files")

    b = sub.add_parser("bench", help="student pre-training throughput vs GEMM bound and a plain loop")
    b.add_argument("--profile", default="micro", help="config profile name or YAML path")
    b.add_argument("--shape", default=None, help="student shape (default: the profile's largest)")
    b.add_argument("--steps", type=int, default=30)
    b.add_argument("--compile", default=None, help="torch.compile the harness loop: true (inductor), false, or a "
                   "backend (default: the profile's pretrain.compile)")
    b.add_argument("--seeds", type=int, default=1, help="also time the plain loop over this many seeds' models "
                   "stacked into one (torch.func.vmap)")

    t = sub.add_parser("timings", help="where a workflow run's time went, from its benchmark files")
    t.add_argument("--profile", default="micro")
    t.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="the cores the run had (its -j, if fewer)")
    t.add_argument("--no-startup", action="store_true", help="skip timing a bare process start-up")

    v = sub.add_parser("validate", help="validate a config profile and print the run grid")
    v.add_argument("--profile", default="micro")

    fs = sub.add_parser("serve", help="a warm process that forks every `python -m harness` run whose environment "
                                      "names its socket in HARNESS_FORK_SERVER (harness/forkserver.py)")
    fs.add_argument("--socket", required=True, help="the Unix socket to listen on")
    fs.add_argument("--parent", type=int, default=None, help="stop when this process is gone (default: the one "
                                                              "that started this)")

    toy = sub.add_parser("paper-toy", help="tiny stand-ins and data at the paper profile's paths "
                                           "(config/paper-toy.yaml)")
    toy.add_argument("--out", type=Path, default=Path("."), help="the directory Snakemake will run in")
    return p


def _run(args) -> None:
    from harness import eval_stages, stages

    s, c = args.stage, getattr(args, "cfg", None)
    if s == "world":
        stages.world(c, args.out)
    elif s == "tokenizer":
        stages.tokenizer(c, args.corpus, args.out)
    elif s == "tokens":
        stages.tokens(c, args.corpus, args.tokenizer, args.out)
    elif s == "source":
        stages.source(c, args.name, args.tokenizer, args.tokens, args.out)
    elif s == "extract":
        stages.extract(c, args.source, args.out, args.tokens, args.tasks, args.domains)
    elif s == "init":
        stages.init(c, args.tokenizer, args.seed, args.out, args.source, args.artifact)
    elif s == "pretrain":
        stages.pretrain(c, args.tokens, args.seed, args.out, args.source, args.init, args.tokenizer, args.artifact)
    elif s == "sft":
        stages.sft_tasks(c, args.pretrained, args.task, args.seed, args.out, args.source)
    elif s == "eval":
        eval_stages.evaluate(c, args.models, args.tasks, args.outs, args.pretrained, args.zeroshot_outs,
                        args.paraphrase_outs)
    elif s == "eval-untrained":
        eval_stages.evaluate_untrained(c, args.tokenizer, args.seed, args.tasks, args.outs, args.source, args.artifact)
    elif s == "eval-generation":
        eval_stages.evaluate_generation(c, args.models, args.tasks, args.outs)
    elif s == "instruction-task":
        from harness import task_data

        task_data.instruction_task(c, args.out)
    elif s == "corpus":
        from harness.corpus import corpus

        corpus(c, args.out)
    elif s == "export-task":
        from harness import task_data

        task_data.export_task(c, args.out)
    elif s == "report":
        from reports.registry import load_report

        load_report(args.table).render(c, args.inputs, args.out)
    elif s == "bench":
        from harness.bench import bench

        compile = {"true": True, "false": False}.get(args.compile, args.compile)
        bench(args.profile, args.shape, args.steps, compile=compile, seeds=args.seeds)
    elif s == "timings":
        from harness.timings import timings

        print(timings(args.profile, args.cores, not args.no_startup))
    elif s == "validate":
        from harness.config import describe, load_profile

        print(describe(load_profile(args.profile)))
    elif s == "paper-toy":
        from harness.paper_toy import write

        write(args.out)
    elif s == "serve":
        from harness.forkserver import serve

        serve(args.socket, args.parent)


TRAINING_STAGES = ("source", "pretrain", "sft")
LIGHT_STAGES = ("validate", "report", "timings", "serve")  # no torch threads, no GPU claim
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
    from harness.registry import method_spec

    for args in chain:
        if getattr(args, "cfg", None) is not None:
            args.cfg = parse_cfg(args.cfg)
            if args.stage in METHOD_STAGES and "method" in args.cfg:
                method_spec(args.cfg["method"])


def _prepare(chain: list[argparse.Namespace]) -> None:
    training = [a for a in chain if a.stage in TRAINING_STAGES]
    if training:  # `devices: N` re-runs this command as N processes
        from harness import distributed

        devices = max(training_devices(a.cfg) for a in training)
        if devices > 1 and len(chain) > 1:
            raise HarnessError(f"{' :: '.join(a.stage for a in chain)}: a stage on {devices} devices runs alone "
                               f"(set `sft_jobs: task` for multi-device fine-tuning)")
        distributed.relaunch(devices)
        distributed.init()
    if any(a.stage not in LIGHT_STAGES for a in chain) and "WORLD_SIZE" not in os.environ:
        from harness.devices import claim_gpu

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
            _run(args)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in USER_OS_ERRORS:
            raise
        print(f"error: {e.strerror}: {e.filename or 'a file of this stage'} (nothing was left half-written)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
