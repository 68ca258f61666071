"""The one training loop, shared by pre-training and SFT of every method.

Methods never own a loop: a method that changes the objective supplies a
`loss_fn` (its `pretrain_loss` hook) and this loop does the rest: AdamW with
warm-up + cosine decay, gradient clipping, bf16 autocast on GPUs only (bf16
matmuls are ~50x slower than fp32 on CPUs), a progress bar, a JSONL log,
periodic checkpoints and resume after a kill.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from tqdm import tqdm

from harness.data.batches import IGNORE
from harness.errors import HarnessError
from harness.io import reading

STATE_FILE = "state.pt"
SHARDED_STATE = "state.dcp"  # a folder: one file of shards per process


class Batches(Protocol):
    steps: int

    def batch(self, step: int) -> dict[str, torch.Tensor]: ...


@dataclass
class OptimConfig:
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    warmup: float = 0.0  # fraction of the steps
    schedule: str = "cosine"  # or "constant"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    @classmethod
    def from_dict(cls, d: dict) -> "OptimConfig":
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass(frozen=True)
class TrainSettings:
    """How a run trains, from its config section (`pretrain:`, `sft:`, `source_training:`): the
    optimiser, and how the step is executed and recorded (the run's own inputs and outputs,
    its checkpoint folder, log and evaluation, are `train`'s arguments)."""

    optim: OptimConfig
    micro_batch: int | None = None  # rows per forward; gradients accumulate to the batch
    fsdp: bool = False  # shard over the processes instead of replicating (DDP)
    compile: bool | str = False  # torch.compile the loss (True: inductor; a string: another backend)
    checkpoint_every: int = 0  # steps (0: never)
    log_every: int = 10

    @classmethod
    def from_section(cls, section: dict) -> "TrainSettings":
        return cls(OptimConfig.from_dict(section["optim"]), micro_batch=section.get("micro_batch"),
                   fsdp=section.get("fsdp", False), compile=section.get("compile", False),
                   checkpoint_every=section.get("checkpoint_every", 0), log_every=section.get("log_every", 10))


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    warm = int(cfg.warmup * total)
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - warm) / max(1, total - warm)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def loss_tokens(batch: dict[str, torch.Tensor]) -> int:
    """The tokens a batch's loss averages over: the labelled ones after the shift by one."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def default_loss(batch: dict[str, torch.Tensor], model: torch.nn.Module) -> torch.Tensor:
    return model(**batch).loss


@dataclass
class TrainResult:
    steps: int
    tokens: int
    final_loss: float
    seconds: float


def _save_state(ckpt_dir: Path, model, opt, sched, step: int, tokens: int) -> None:
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / (STATE_FILE + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "step": step, "tokens": tokens, "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, ckpt_dir / STATE_FILE)


def _compiled(loss_fn: Callable, compile: bool | str) -> Callable:
    """`loss_fn` under torch.compile (True: inductor; a string names another backend), or itself."""
    if not compile:
        return loss_fn
    backend = "inductor" if compile is True else compile
    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise HarnessError(f"unknown torch.compile backend {backend!r}; known: "
                           f"{', '.join(torch._dynamo.list_backends())} (and debug ones)")
    return torch.compile(loss_fn, backend=backend)


def _optimizer(model: torch.nn.Module, optim: OptimConfig) -> tuple[torch.optim.Optimizer, list]:
    """AdamW over the trainable parameters, with no weight decay on vectors (biases, norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": optim.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=optim.lr, betas=optim.betas,
                            fused=True)  # one kernel per step instead of one per tensor: +3-5% on CPU
    return opt, params


def _resume(state_path: Path | None, sharded: bool, model, opt, sched, device) -> tuple[int, int]:
    """(step, tokens) of the checkpoint at `state_path`, loaded into the model, optimiser,
    schedule and RNG; (0, 0) without one."""
    from harness.training import distributed

    if not (state_path and state_path.exists()):
        return 0, 0
    if sharded:
        return distributed.load_sharded(state_path, model, opt, sched)
    with reading(state_path, "training checkpoint"):
        state = torch.load(state_path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["step"], state["tokens"]


class _Log:
    """The run's JSON-lines log, its TensorBoard (and W&B) view beside it (harness.training.board),
    and its `on_log` callback (rank 0's: others pass None). A resumed run's log keeps only the
    lines of the steps it will not redo."""

    def __init__(self, path: Path | None, on_log: Callable[[dict], None] | None, start: int, desc: str = "train",
                 start_tokens: int = 0):
        from harness.training.board import Board

        if path and path.exists():
            kept = [l for l in path.read_text().splitlines() if json.loads(l)["step"] <= start]
            path.write_text("".join(l + "\n" for l in kept))
        self.file = open(path, "a", encoding="utf-8") if path else None
        self.board = Board(path.parent, desc, start, start_tokens) if path else None
        self.on_log = on_log

    def write(self, record: dict) -> None:
        if self.file:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
            self.board.write(record)
        if self.on_log:
            self.on_log(record)

    def close(self) -> None:
        if self.file:
            self.file.close()
            self.board.close()


def _accumulate(batch: dict, micro_batch: int | None, loss_fn: Callable, stepper, device, desc: str,
                step: int) -> torch.Tensor:
    """One batch's forward and backward, `micro_batch` rows at a time, each part's loss weighted by
    its share of the whole batch's (all processes') labelled tokens, so that the gradient is the
    one-batch run's (DDP divides by the world size); the batch's weighted loss, detached."""
    from harness.training import distributed

    parts = distributed.micro_batches(batch, micro_batch)
    counts = [loss_tokens(part) for part in parts]
    whole = distributed.total(sum(counts)) / distributed.world_size()
    if not whole:
        raise HarnessError(f"{desc}: the batch of step {step} has no labelled token")
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    loss = torch.zeros((), device=device)
    for i, part in enumerate(parts):
        part = {k: v.to(device, non_blocking=True) for k, v in part.items()}
        with distributed.no_sync(stepper, last=i == len(parts) - 1):
            with autocast:
                part_loss = loss_fn(part, stepper)
            if not torch.isfinite(part_loss):
                raise HarnessError(f"{desc}: loss is {part_loss.item()} at step {step}; lower the "
                                   f"learning rate or check the data")
            weight = counts[i] / whole
            (part_loss * weight if weight != 1 else part_loss).backward()
        loss = loss + part_loss.detach() * weight
    return loss


def train(model: torch.nn.Module, batches: Batches, settings: TrainSettings, *,
          loss_fn: Callable[[dict, torch.nn.Module], torch.Tensor] = default_loss,
          ckpt_dir: Path | None = None, log_path: Path | None = None, desc: str = "train",
          on_log: Callable[[dict], None] | None = None,
          eval_every: int = 0, eval_fn: Callable[[torch.nn.Module], dict] | None = None,
          eval_at_start: bool = False, stop_when: Callable[[], bool] | None = None) -> TrainResult:
    """Train `model` on `batches.steps` batches as `settings` say; resume from `ckpt_dir` if it
    holds a state.

    Checkpoints are written every `checkpoint_every` steps (0: never) and left for the
    caller to delete once the final model is saved. Every `eval_every` steps and after
    the last, `eval_fn(model)`'s metrics join the log (`{"step", "eval": {...}}`); it runs
    in eval mode under a forked RNG, so evaluating never changes the training run;
    `eval_at_start` also evaluates the untrained model (step 0) of a run that starts fresh.
    `micro_batch` rows at a time are run and their gradients accumulated (the batch's
    size stays the optimiser's batch), each part weighted by its share of the batch's labelled
    tokens, so that answers of unequal length weigh as in one whole batch. Under
    torch.distributed.run each process trains on its share of every batch, weighted the same
    way (`harness.training.distributed`; `fsdp` shards the model over them);
    rank 0 alone logs. `compile` compiles the loss computation, model included, with
    torch.compile (True: inductor; a string names another backend); evaluation runs eagerly,
    since generation's ever-changing shapes would recompile. A sharded model is evaluated on every rank (its forward is collective)
    and checkpointed by every rank; `harness.training.distributed.full_state_dict` gathers it afterwards.
    `stop_when()`, asked after each evaluation, ends the run early (a dev set that stopped
    improving); rank 0's answer holds for every process, so all stop at the same step. The
    schedule keeps the full run's horizon, and `TrainResult.steps` counts the steps taken.
    """
    from harness.training import distributed

    optim = settings.optim
    main = distributed.is_main()
    device = next(model.parameters()).device
    stepper = distributed.wrap(model, fsdp=settings.fsdp)
    loss_fn = _compiled(loss_fn, settings.compile)
    sharded = distributed.is_sharded(model)
    opt, params = _optimizer(model, optim)
    total = batches.steps
    horizon = getattr(batches, "schedule_steps", total)  # a longer run's schedule: its checkpoint at `total`
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, horizon, optim))
    state_path = ckpt_dir / (SHARDED_STATE if sharded else STATE_FILE) if ckpt_dir else None
    start, tokens = _resume(state_path, sharded, model, opt, sched, device)
    log = _Log(log_path if main else None, on_log if main else None, start, desc, tokens)

    def evaluate(step: int, tokens: int) -> None:
        if not (eval_fn and (main or sharded)):
            return
        model.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            metrics = eval_fn(model)
        model.train()
        log.write({"step": step, "tokens": tokens, "eval": metrics})

    if eval_at_start and start == 0:
        evaluate(0, 0)
    model.train()
    t0, loss_val, window, norms = time.perf_counter(), float("nan"), [], []
    bar = tqdm(range(start, total), initial=start, total=total, desc=desc, unit="step",
               mininterval=2.0, dynamic_ncols=True, disable=not main)
    try:
        for step in bar:
            batch = distributed.shard(batches.batch(step))
            loss = _accumulate(batch, settings.micro_batch, loss_fn, stepper, device, desc, step)
            # the norm before clipping, for the log; with no clip the scale is 1.0, an exact no-op
            norm = torch.nn.utils.clip_grad_norm_(params, optim.grad_clip or math.inf).detach()
            norms.append(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP: a DTensor
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            n_tok = int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
            tokens += distributed.total(n_tok)
            window.append(distributed.mean(loss))
            evaluating = eval_every and ((step + 1) % eval_every == 0 or step + 1 == total)
            checkpointing = bool(ckpt_dir and settings.checkpoint_every and (step + 1) % settings.checkpoint_every == 0
                                 and step + 1 < total)
            # every evaluation has its loss; a checkpoint closes the loss window, so a run resumed from
            # it logs what the uninterrupted run logs
            if (step + 1) % settings.log_every == 0 or step + 1 == total or evaluating or checkpointing:
                loss_val = float(torch.stack(window).mean())
                grad_norm = float(torch.stack([n.float() for n in norms]).mean())
                window.clear()
                norms.clear()
                bar.set_postfix(loss=f"{loss_val:.3f}")
                log.write({"step": step + 1, "loss": loss_val, "lr": sched.get_last_lr()[0], "tokens": tokens,
                           "grad_norm": grad_norm, "seconds": round(time.perf_counter() - t0, 3)})
            if evaluating:
                evaluate(step + 1, tokens)
                if stop_when is not None and distributed.agree(stop_when()) and step + 1 < total:
                    total = step + 1
                    break
            if checkpointing:
                if sharded:
                    distributed.save_sharded(state_path, model, opt, sched, step + 1, tokens)
                elif main:
                    _save_state(ckpt_dir, model, opt, sched, step + 1, tokens)
    finally:
        bar.close()
        log.close()
    return TrainResult(steps=total, tokens=tokens, final_loss=loss_val, seconds=time.perf_counter() - t0)
