"""A training run's life on disk: its work dir (checkpoints, training log), resumed only by
the run that started it; the model it starts from; the trained model saved atomically with its
record. Every training stage (`harness.stages.build`) runs through these."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.training.devices import compute_device
from harness.errors import HarnessError
from harness.io import TRAIN_LOG, atomic_dir, atomic_write_json, reading, write_run_record


def work_dir(out: Path) -> Path:
    return out.with_name(out.name + ".work")


WORK_STAMP = "started.json"


def open_work_dir(out: Path, cfg: dict, seed: int, inputs: dict[str, Path | None]) -> Path:
    """`out`'s work dir (checkpoints, training log), resumed only by the run that started it: the
    same config slice, seed and inputs (each input's `harness.io.fingerprint`). A dir left by a
    kill under another config (a changed lr, a smaller budget, a rebuilt init) is discarded with
    a notice; resuming it would save the old run's weights under the new config's record."""
    import sys

    from harness.training.distributed import is_main
    from harness.io import atomic_write_text, fingerprint

    work = work_dir(out)
    stamp = json.dumps({"config": cfg, "seed": seed,
                        "inputs": {k: fingerprint(v) for k, v in inputs.items() if v is not None}},
                       sort_keys=True, default=str)
    if is_main():
        if work.exists() and not ((work / WORK_STAMP).is_file() and (work / WORK_STAMP).read_text() == stamp):
            print(f"notice: discarding {work}: it was started with another config or other inputs; "
                  f"training starts afresh", file=sys.stderr)
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        if not (work / WORK_STAMP).is_file():
            atomic_write_text(work / WORK_STAMP, stamp)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # no rank may read a checkpoint the main rank is discarding
    return work


def pretrain_run(model, train_cfg: dict, tokens_file: Path, budget: int, seed: int, work: Path, desc: str,
              heldout: dict | None = None, loss_fn=None, horizon: int | None = None):
    """Pre-train on `budget` tokens of the stream, checkpointing into `work`. `heldout` (the
    config's section) sets aside the stream's last `sequences` windows, which sources and students alike never train on; with
    `every_steps` the run logs its LM loss on them from step 0 (the data-efficiency curves).
    `horizon` (tokens): the learning-rate schedule spans that longer run, of which this is the
    checkpoint at `budget` (`pretrain.budgets: checkpoints`)."""
    from harness.data.batches import PretrainBatches, heldout_loss, load_tokens
    from harness.training.train import TrainSettings, default_loss, train

    heldout = heldout or {}
    batches = PretrainBatches(load_tokens(tokens_file), train_cfg["seq_len"],
                              train_cfg["batch_size"], budget, seed, heldout=heldout.get("sequences", 0),
                              horizon=horizon)
    if batches.n_sequences > batches.n_windows and not train_cfg.get("repeat_corpus", False):
        # the paper trains on fresh text: a budget the corpus cannot fill would silently be epochs
        raise HarnessError(f"{desc}: budget {budget} tokens is more than the corpus's {batches.n_windows} "
                           f"trainable windows of {batches.seq_len} ({tokens_file}); give a larger corpus, or "
                           f"`repeat_corpus: true` in the training section to train several passes")
    every = heldout.get("every_steps", 0) if batches.heldout else 0
    held = batches.heldout_batches() if every else []
    return train(model.to(compute_device()), batches, TrainSettings.from_section(train_cfg),
                 loss_fn=loss_fn or default_loss, ckpt_dir=work, log_path=work / TRAIN_LOG,
                 desc=desc, eval_every=every, eval_at_start=bool(every),
                 eval_fn=(lambda m: {"heldout_loss": heldout_loss(m, held)}) if every else None)


def load_student(path: Path):
    from transformers import AutoModelForCausalLM

    from harness.data.tokenizer import load_tokenizer

    if not (path / "config.json").is_file():
        raise HarnessError(f"missing student checkpoint {path}")
    with reading(path, "student checkpoint"):
        return AutoModelForCausalLM.from_pretrained(path), load_tokenizer(path)


def load_model(path: Path):
    """A student checkpoint, or the model a source directory's manifest points at (trainable)."""
    from harness.models.sources import MANIFEST, Source
    from harness.data.tokenizer import load_tokenizer

    if (path / MANIFEST).is_file():
        source = Source.from_manifest(path)
        return source.load().train().requires_grad_(True), load_tokenizer(source.model_path)
    return load_student(path)


def save_trained(model, tok, out: Path, stage: str, cfg: dict, seed: int, model_subdir: str = "",
                  manifest: tuple[str, dict] | None = None, **extra: Any) -> None:
    """Save a trained model with its tokenizer, training log and run record, then drop its work dir
    (rank 0 alone, in a data-parallel run)."""
    from harness.training.board import VIEW_DIRS
    from harness.training.distributed import full_state_dict, is_main

    weights = full_state_dict(model)  # collective: every rank of a sharded run takes part
    if not is_main():
        return
    work = work_dir(out)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp / model_subdir, state_dict=weights)
        tok.save_pretrained(tmp / model_subdir)
        if manifest:
            atomic_write_json(tmp / manifest[0], manifest[1])
        if (work / TRAIN_LOG).is_file():
            shutil.copy(work / TRAIN_LOG, tmp / TRAIN_LOG)
        for view in VIEW_DIRS:  # the curves' TensorBoard (and offline W&B) view, harness.training.board
            if (work / view).is_dir():
                shutil.copytree(work / view, tmp / view)
        write_run_record(tmp, stage, cfg, seed, **extra)
    shutil.rmtree(work, ignore_errors=True)
