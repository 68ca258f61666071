"""The workflow's stages, one function each. Every Snakemake rule runs one of
them through the CLI (`python -m harness <stage> ...`), so any stage can be
rerun and debugged by hand with the command Snakemake prints.

Each stage reads its inputs, writes its output directory atomically (see
`harness.io.atomic_dir`) and stores a run record (config, seed, code version)
beside it. Long stages keep a `<out>.work/` directory with checkpoints and the
training log so a killed job resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError
from harness.training.devices import compute_device
from harness.io import TRAIN_LOG, atomic_dir, atomic_write_json, write_run_record
from harness.api.method import ExtractData  # torch-free, like this module's other top-level imports
from harness.training.runs import load_model, load_student, open_work_dir, pretrain_run, save_trained


# ---------------------------------------------------------------- data

def world(cfg: dict, out: Path) -> None:
    """Generate the micro world: corpus (all domains and each domain alone) and task splits."""
    from harness.data import world as w
    from harness.data.tasks import write_jsonl

    wc = cfg["world"]
    the_world = w.make_world(wc["seed"], wc["size"])
    corpus = w.make_corpus(the_world, wc["seed"], wc["repeats"])
    with atomic_dir(out) as tmp:
        (tmp / "domains").mkdir()
        for domain, docs in corpus.items():
            (tmp / "domains" / f"{domain}.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
        # interleave the domains so any prefix of the corpus is multi-domain
        mixed = [d for group in zip(*[iter(docs) for docs in corpus.values()]) for d in group]
        mixed += [d for docs in corpus.values() for d in docs[min(map(len, corpus.values())):]]
        (tmp / "corpus.txt").write_text("\n\n".join(mixed) + "\n", encoding="utf-8")
        counts = {}
        for task in cfg["tasks"]:
            if task not in w.TASKS:
                raise HarnessError(f"the micro world has no task {task!r}; it has {', '.join(w.TASKS)}")
            splits = w.make_task(the_world, task, wc["seed"], wc["test_fraction"])
            for split, records in splits.items():
                write_jsonl(tmp / "tasks" / task / f"{split}.jsonl", records)
            counts[task] = {split: len(r) for split, r in splits.items()}
        write_run_record(tmp, "world", cfg, wc["seed"], documents={d: len(v) for d, v in corpus.items()},
                         task_records=counts)


def tokenizer(cfg: dict, corpus: Path, out: Path) -> None:
    """Train the BPE tokenizer on the corpus, or copy a pretrained one (`tokenizer.path`)."""
    from harness.data.tokenizer import load_tokenizer, train_tokenizer

    tc = cfg["tokenizer"]
    tok = load_tokenizer(tc["path"]) if "path" in tc else train_tokenizer(corpus, tc["vocab_size"])
    with atomic_dir(out) as tmp:
        tok.save_pretrained(tmp)
        write_run_record(tmp, "tokenizer", cfg, vocab_size=len(tok))


def tokens(cfg: dict, corpus: Path, tokenizer_dir: Path, out: Path) -> None:
    """Tokenise the pre-training corpus once; every pre-training job memory-maps the result."""
    from harness.data.batches import write_tokens
    from harness.io import atomic_write_text
    from harness.data.tokenizer import identity, load_tokenizer

    out.parent.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(tokenizer_dir)
    n = write_tokens(corpus, tok, out, quota=cfg.get("quota"))
    atomic_write_text(out.with_suffix(".json"),
                      json.dumps({"tokens": n, "tokenizer": identity(tok), "config": cfg}) + "\n")


# ---------------------------------------------------------------- sources

def source(cfg: dict, name: str, tokenizer_dir: Path, tokens_file: Path, out: Path) -> None:
    """Resolve a source LLM: point at `model_path` (paper), or pre-train a tiny one here (micro)."""
    spec = cfg["source"]
    if "model_path" in spec:
        manifest = {"name": name, "arch": spec["arch"], "model_path": spec["model_path"],
                    "label": spec.get("label", name), "trust_remote_code": spec.get("trust_remote_code", False)}
        with atomic_dir(out) as tmp:
            atomic_write_json(tmp / "source.json", manifest)
            write_run_record(tmp, "source", cfg)
        return
    from harness.models.build import build_model, source_config
    from harness.data.tokenizer import load_tokenizer, special_ids

    tok = load_tokenizer(tokenizer_dir)
    seed = cfg["seed"]
    model = build_model(source_config(name, spec, len(tok), cfg["training"]["seq_len"], special_ids(tok)), seed)
    # held-out windows only: sources log no curve, but must not have seen the students' held-out text
    heldout = {"sequences": cfg.get("heldout", {}).get("sequences", 0)}
    work = open_work_dir(out, cfg, seed, {"tokenizer": tokenizer_dir, "tokens": tokens_file})
    # `passes` asks for repetition: a source learns the world's facts by seeing them many times
    training = {**cfg["training"], **({"repeat_corpus": True} if "passes" in cfg["training"] else {})}
    result = pretrain_run(model, training, tokens_file, source_budget(cfg, tokens_file), seed, work,
                       desc=f"source {name}", heldout=heldout)
    manifest = {"name": name, "arch": spec["arch"], "model_path": "model", "label": spec.get("label", name),
                "tokens": result.tokens, "passes": cfg["training"].get("passes"), "final_loss": result.final_loss}
    save_trained(model, tok, out, "source", cfg, seed, model_subdir="model", manifest=("source.json", manifest),
                  parameters=sum(p.numel() for p in model.parameters()))


def source_budget(cfg: dict, tokens_file: Path) -> int:
    """A source's pre-training tokens: `budget`, or `passes` of the world (the token stream holds
    `world_passes` of them), so that a source's knowledge is set in exposures per fact."""
    from harness.data.batches import load_tokens

    training = cfg["training"]
    if "budget" in training:
        return training["budget"]
    n = len(load_tokens(tokens_file))
    return round(training["passes"] * n / cfg["world_passes"])


# ---------------------------------------------------------------- method stages

def _method_and_context(cfg: dict, seed: int, source_dir: Path | None):
    from harness.api.method import Context
    from harness.api.registry import load_method
    from harness.models.sources import Source

    method = load_method(cfg["method"])
    options = {**cfg.get("method_options", {}), **method.variant_options}
    src = Source.from_manifest(source_dir) if source_dir else None
    return method, Context(options=options, seed=seed, device=compute_device(), source=src)


def _extract_data(cfg: dict, ctx, tokens_file: Path | None, task_dirs: list[Path],
                  domains_dir: Path | None) -> ExtractData:
    """What an `extract` hook may read (`harness.api.method.ExtractData`), loaded lazily."""
    import torch

    from harness.data.batches import load_tokens
    from harness.data.tasks import Task
    from harness.data.tokenizer import load_tokenizer

    def tokenizer():
        return load_tokenizer(ctx.source.model_path)

    def domain_tokens(domain: str):
        from harness.data.batches import tokenize_corpus

        path = (domains_dir or Path("-")) / f"{domain}.txt"
        if not path.is_file():
            raise HarnessError(f"no corpus domain {domain!r} (looked for {path})")
        return tokenize_corpus(path, tokenizer())

    def task_batches(max_sequences: int = 64):
        """Each task's train queries packed into seq_len windows, an equal share per task."""
        from harness.data.batches import equal_share_windows

        tok = tokenizer()
        streams = []
        for d in task_dirs:
            stream = []
            for r in Task(d.name, d).records("train"):
                stream += tok(r["query"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            streams.append(stream)
        windows = equal_share_windows(streams, cfg["seq_len"], max_sequences)
        for i in range(0, len(windows), 8):
            yield torch.tensor(windows[i:i + 8], device=ctx.device)

    def task_records(split: str = "train") -> dict[str, list[dict]]:
        return {d.name: Task(d.name, d).records(split) for d in task_dirs}

    def stream():
        if tokens_file is None:
            return None
        from harness.data.tokenizer import check_same_tokenizer

        sidecar = tokens_file.with_suffix(".json")
        recorded = json.loads(sidecar.read_text()).get("tokenizer") if sidecar.is_file() else None
        check_same_tokenizer(tokenizer(), recorded, f"the token stream {tokens_file}")
        tokens = load_tokens(tokens_file)
        if cfg.get("heldout", {}).get("sequences"):
            from harness.data.batches import heldout_start

            # the students' held-out windows stay unseen by every method, alignment included
            tokens = tokens[:heldout_start(len(tokens), cfg["heldout"]["seq_len"], cfg["heldout"]["sequences"])]
        return tokens

    return ExtractData(load_tokens=stream, seq_len=cfg["seq_len"], domain_tokens=domain_tokens,
                       task_batches=task_batches, task_records=task_records, source_tokenizer=tokenizer)


def extract(cfg: dict, source_dir: Path, out: Path, tokens_file: Path | None = None,
            task_dirs: list[Path] = (), domains_dir: Path | None = None) -> None:
    """Run the method's `extract` hook once per source; every student shape reuses the artifact."""
    from harness.api.method import hook

    method, ctx = _method_and_context(cfg, cfg["seed"], source_dir)
    fn = hook(method, "extract")
    with atomic_dir(out) as tmp:
        ctx.work_dir = tmp
        ctx.data = _extract_data(cfg, ctx, tokens_file, list(task_dirs), domains_dir)
        manifest = (fn(ctx) or {}) if fn else {}
        atomic_write_json(tmp / "manifest.json", {"method": cfg["method"], "source": ctx.source.name,
                                                  "extracted": fn is not None, **manifest})
        write_run_record(tmp, "extract", cfg, cfg["seed"])


def build_student(cfg: dict, tokenizer_dir: Path, seed: int, source_dir: Path | None = None,
                  artifact: Path | None = None):
    """(student, tokenizer): the student of `cfg["shape"]` before pre-training, built by the
    method's `init_student` from its artifact, or at random. Deterministic in (cfg, seed, inputs),
    so the job that pre-trains a student builds it in-process: a job of its own would spend
    ~5 s starting Python for well under one of work."""
    from harness.api.method import hook
    from harness.models.build import build_model, param_count, student_config
    from harness.data.tokenizer import load_tokenizer, special_ids

    tok = load_tokenizer(tokenizer_dir)
    config = student_config(cfg["shape_name"], cfg["shape"], len(tok), cfg["seq_len"], special_ids(tok))
    method, ctx = _method_and_context(cfg, seed, source_dir)
    fn = hook(method, "init_student")
    if fn:
        import torch

        torch.manual_seed(seed)
        model = fn(config, artifact, ctx)
    else:
        model = build_model(config, seed)
    n = sum(p.numel() for p in model.parameters())
    if n != param_count(config):
        raise HarnessError(f"method {cfg['method']!r} returned a student with {n} parameters; "
                           f"shape {cfg['shape_name']!r} has {param_count(config)}")
    return model, tok


def init(cfg: dict, tokenizer_dir: Path, seed: int, out: Path, source_dir: Path | None = None,
         artifact: Path | None = None) -> None:
    """Save the student of one shape before pre-training (`build_student`): for inspection, or
    to pre-train it with `pretrain --init`."""
    model, tok = build_student(cfg, tokenizer_dir, seed, source_dir, artifact)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_run_record(tmp, "init", cfg, seed, parameters=sum(p.numel() for p in model.parameters()))


def pretrain(cfg: dict, tokens_file: Path, seed: int, out: Path, source_dir: Path | None = None,
             init_dir: Path | None = None, tokenizer_dir: Path | None = None, artifact: Path | None = None) -> None:
    """Pre-train the student on exactly `budget` tokens with the method's loss (default CE). The
    student is the one `init_dir` holds, or, without it, the one `build_student` makes from
    `cfg` (its `shape`, `seq_len`), `tokenizer_dir` and the method's `artifact`."""
    from harness.api.method import hook

    if init_dir is not None:
        model, tok = load_student(init_dir)
    elif tokenizer_dir is not None:
        model, tok = build_student(cfg, tokenizer_dir, seed, source_dir, artifact)
    else:
        raise HarnessError("pretrain: give --init (a saved student) or --tokenizer (build it from --cfg)")
    parameters = sum(p.numel() for p in model.parameters())
    method, ctx = _method_and_context(cfg, seed, source_dir)
    ctx.tokenizer = tok
    fn = hook(method, "pretrain_loss")
    loss_fn = (lambda batch, student: fn(batch, student, ctx)) if fn else None
    work = open_work_dir(out, cfg, seed, {"init": init_dir, "tokenizer": tokenizer_dir, "artifact": artifact,
                                           "tokens": tokens_file, "source": source_dir})
    result = pretrain_run(model, cfg["pretrain"], tokens_file, cfg["budget"], seed, work,
                       desc=f"pretrain {cfg['method']}/{cfg.get('shape_name', '')}", heldout=cfg.get("heldout"),
                       loss_fn=loss_fn, horizon=cfg.get("horizon"))
    from harness.training.distributed import world_size

    save_trained(model, tok, out, "pretrain", cfg, seed, processes=world_size(), tokens=result.tokens,
                  final_loss=result.final_loss, parameters=parameters,
                  seconds=round(result.seconds, 2), tokens_per_second=round(result.tokens / result.seconds, 1))


def sft_tasks(cfg: dict, pretrained_dir: Path, task_dirs: list[Path], seed: int, outs: list[Path],
              source_dir: Path | None = None) -> None:
    """`sft` once per task from the same pre-trained student: `cfg["tasks"]` holds one task slice
    (`task`, `sft`, `task_kind`) per task directory, over the rest of `cfg` (the method's slice).
    One process for several tasks spares each one its start-up (`sft_jobs: student`); each output
    is the one a job of its own would write."""
    slices = cfg.get("tasks")
    if not isinstance(slices, list) or not (len(slices) == len(task_dirs) == len(outs)):
        raise HarnessError(f"sft: --cfg needs `tasks`, one slice per --task and --out "
                           f"({len(task_dirs)} tasks, {len(outs)} outputs)")
    common = {k: v for k, v in cfg.items() if k != "tasks"}
    for task_cfg, task_dir, out in zip(slices, task_dirs, outs):
        sft({**common, **task_cfg}, pretrained_dir, task_dir, seed, out, source_dir)


def sft(cfg: dict, pretrained_dir: Path, task_dir: Path, seed: int, out: Path,
        source_dir: Path | None = None) -> None:
    """Adapt (method hook) then fine-tune on the task's train split, loss on the answer only.
    `pretrained_dir` may also be a source's directory (Table 2 fine-tunes the sources); a
    config without `method` adapts nothing. An `sft.dev` section scores a dev set during
    training, to keep its best model or stop once it stops improving (harness.training.dev_selection)."""
    import torch

    from harness.data.batches import SFTBatches, sft_pairs
    from harness.training.dev_selection import DevSelection, split_dev
    from harness.api.method import hook
    from harness.data.tasks import MULTIPLE_CHOICE, Task
    from harness.training.train import TrainSettings, default_loss, train

    task = Task(cfg["task"], task_dir, kind=cfg.get("task_kind", MULTIPLE_CHOICE))
    records = task.records("train")
    model, tok = load_model(pretrained_dir)
    sc = cfg["sft"]
    selection, dev = None, None
    if "dev" in sc:  # before any output: a dev section that cannot work stops here, leaving nothing
        records, dev = split_dev(task, records, sc["dev"], seed)
        selection = DevSelection(_dev_score(task, tok, sc, dev), sc["dev"].get("metric", "rougeL"),
                                 sc["dev"].get("keep", "last"), sc["dev"].get("patience"))
    method, ctx = _method_and_context(cfg, seed, source_dir) if "method" in cfg else (None, None)
    # opened before adapting: an adapting method logs its own training there (ctx.work_dir)
    work = open_work_dir(out, cfg, seed, {"pretrained": pretrained_dir, "task": task_dir, "source": source_dir})
    loss_fn = None
    if method is not None:
        ctx.tokenizer, ctx.work_dir = tok, work
        fn = hook(method, "adapt")
        if fn:
            torch.manual_seed(seed)
            model = fn(model, task, ctx)
        shaped = hook(method, "sft_loss")
        if shaped:
            loss_fn = lambda batch, student: shaped(batch, student, ctx)  # noqa: E731
    pairs = sft_pairs(tok, records)
    batches = SFTBatches(pairs, sc["batch_size"], sc["epochs"], seed, tok.pad_token_id, sc["max_len"])
    result = train(model.to(compute_device()), batches, TrainSettings.from_section(sc), ckpt_dir=work,
                   loss_fn=loss_fn or default_loss, log_path=work / TRAIN_LOG, desc=f"sft {task.name}",
                   eval_every=sc["dev"]["every_epochs"] * batches.per_epoch if selection else 0,
                   eval_fn=selection, stop_when=selection.converged if selection else None)
    extra = {}
    if selection:
        selection.restore_best(model)
        extra = {"dev": selection.record(), "dev_examples": len(dev), "epochs": result.steps / batches.per_epoch}
    model = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    save_trained(model, tok, out, "sft", cfg, seed, examples=len(pairs), steps=result.steps,
                  final_loss=result.final_loss if result.steps else None, seconds=round(result.seconds, 2), **extra)


def _dev_score(task, tok, sc: dict, dev: list[dict]):
    """The dev metric of `sc["dev"]` as a function of the model."""
    from harness.data.batches import sft_pairs
    from harness.training.dev_selection import answer_loss
    from harness.data.tasks import GENERATION

    dev_cfg = sc["dev"]
    if dev_cfg.get("metric", "rougeL") == "loss":
        pairs = sft_pairs(tok, dev)
        return lambda model: answer_loss(model, pairs, tok.pad_token_id, sc["max_len"], sc["batch_size"])
    if task.kind != GENERATION:
        raise HarnessError(f"sft {task.name!r}: dev metric rougeL needs a generation task; "
                           f"use `dev.metric: loss`")
    from evals.generation import GenerationConfig, evaluate_generation

    gen = GenerationConfig.from_dict(dev_cfg.get("generation", {}))
    return lambda model: evaluate_generation(model, tok, dev, gen, desc=f"dev {task.name}")["value"]
