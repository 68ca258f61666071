"""Data-parallel training across processes, for the one training loop.

A stage whose training section sets `devices: N > 1` re-executes its own command
under `torch.distributed.run` (N processes on this machine; NCCL on GPUs, gloo on
CPUs). Each process takes an equal slice of every step's batch, so N processes
see exactly the batches one process would, and DDP averages their gradients: the
run equals the single-process run up to floating-point summation order. Only
rank 0 writes logs and outputs.

`fsdp: true` shards parameters, gradients and optimizer state over the processes
instead of replicating them (FSDP2's `fully_shard`, one unit per decoder layer), for
models whose AdamW state does not fit one GPU (fine-tuning the 7B/16B sources).
A sharded run checkpoints with torch.distributed.checkpoint, every rank writing its
shards, and gathers the full weights to rank 0 only to save the final model.
"""

from __future__ import annotations

import atexit
import os
import sys
from contextlib import nullcontext

import torch

from harness.errors import HarnessError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def is_main() -> bool:
    return rank() == 0


def relaunch(devices: int) -> None:
    """Replace this process by `devices` copies of it under torch.distributed.run (unless it
    already is one of them)."""
    if devices <= 1 or "WORLD_SIZE" in os.environ:
        return
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
            "-m", "harness", *sys.argv[1:]]
    sys.stdout.flush()
    os.execv(sys.executable, args)


def init() -> None:
    """Join the process group torch.distributed.run set up; GPU processes take their local GPU."""
    if world_size() <= 1 or torch.distributed.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.distributed.init_process_group("nccl")
    else:
        torch.distributed.init_process_group("gloo")
    # leave the group before the interpreter exits: a gloo group torn down by exit itself can abort
    # the process ("terminate called without an active exception") after its work is done
    atexit.register(_leave)


def _leave() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class _DDP(torch.nn.parallel.DistributedDataParallel):
    """DDP that lets loss functions read the wrapped model's attributes (`config`, ...)."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: torch.nn.Module, fsdp: bool = False) -> torch.nn.Module:
    """The model DDP-wrapped, or sharded in place (`fsdp`); unchanged in a single process.
    Build the optimizer after this: sharding replaces the parameters."""
    if world_size() <= 1:
        return model
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        # transformers names the blocks that must not be split across devices: the decoder layers
        units = set(getattr(model, "_no_split_modules", None) or [])
        for module in model.modules():
            if type(module).__name__ in units:
                fully_shard(module)
        fully_shard(model)
        return model
    device = next(model.parameters()).device
    return _DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state_dict(model: torch.nn.Module) -> dict | None:
    """A sharded model's full weights on rank 0's CPU (every rank must call this); None for a
    model that is not sharded, whose own state dict is already whole."""
    if not is_sharded(model):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_state_dict(model: torch.nn.Module, state: dict | None) -> None:
    """Load whole weights into a model; into a sharded one from rank 0's copy (what
    `full_state_dict` returned there; every rank must call this, the others with None)."""
    if not is_sharded(model):
        model.load_state_dict(state)
        return
    from torch.distributed.tensor import DTensor, distribute_tensor

    # distribute_tensor sends rank 0's whole tensor and keeps each rank's shard; the other
    # ranks only say its shape (set_model_state_dict's broadcast_from_rank0 fails on gloo)
    shards = {}
    for name, current in model.state_dict().items():
        local = current.to_local() if isinstance(current, DTensor) else current
        whole = (state[name].to(local.device, local.dtype) if is_main()
                 else torch.empty(current.shape, dtype=local.dtype, device=local.device))
        if isinstance(current, DTensor):
            shards[name] = distribute_tensor(whole, current.device_mesh, current.placements)
        else:
            torch.distributed.broadcast(whole, src=0)
            shards[name] = whole
    model.load_state_dict(shards)


def save_sharded(path, model, opt, sched, step: int, tokens: int) -> None:
    """Every rank writes its shards of model and optimizer state (torch.distributed.checkpoint),
    into a temporary folder that rank 0 renames once all have written."""
    import shutil
    from pathlib import Path

    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    model_state, optim_state = get_state_dict(model, opt)
    dcp.save({"model": model_state, "optim": optim_state, "scheduler": sched.state_dict(),
              "progress": {"step": step, "tokens": tokens}}, checkpoint_id=tmp)
    torch.distributed.barrier()
    if is_main():
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    torch.distributed.barrier()


def load_sharded(path, model, opt, sched) -> tuple[int, int]:
    """Restore what `save_sharded` wrote; returns (step, tokens)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, opt)
    state = {"model": model_state, "optim": optim_state, "scheduler": sched.state_dict(),
             "progress": {"step": 0, "tokens": 0}}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    sched.load_state_dict(state["scheduler"])
    return int(state["progress"]["step"]), int(state["progress"]["tokens"])


def shard(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This process's equal share of the batch's rows."""
    n, world = len(next(iter(batch.values()))), world_size()
    if world <= 1:
        return batch
    if n % world:
        raise HarnessError(f"a batch of {n} sequences does not split evenly over {world} processes; "
                           f"make batch_size a multiple of devices")
    lo, hi = rank() * n // world, (rank() + 1) * n // world
    return {k: v[lo:hi] for k, v in batch.items()}


def micro_batches(batch: dict[str, torch.Tensor], size: int | None) -> list[dict[str, torch.Tensor]]:
    """The batch cut into rows of `size` (gradient accumulation); the whole batch when None."""
    n = len(next(iter(batch.values())))
    if not size or size >= n:
        return [batch]
    return [{k: v[i:i + size] for k, v in batch.items()} for i in range(0, n, size)]


def no_sync(model: torch.nn.Module, last: bool):
    """Skip DDP's gradient all-reduce on every micro-batch but the step's last."""
    return model.no_sync() if (not last and isinstance(model, _DDP)) else nullcontext()


def agree(flag: bool) -> bool:
    """Rank 0's answer, on every process (a decision only rank 0 could take, such as stopping
    after an evaluation that ran there alone)."""
    if world_size() <= 1:
        return bool(flag)
    t = torch.tensor([float(bool(flag))], device="cuda" if torch.cuda.is_available() else "cpu")
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over processes of a scalar (for logging)."""
    if world_size() <= 1:
        return value
    value = value.detach().clone().float()
    torch.distributed.all_reduce(value)
    return value / world_size()


def total(value: int) -> int:
    if world_size() <= 1:
        return value
    t = torch.tensor(float(value), device="cuda" if torch.cuda.is_available() else "cpu")
    torch.distributed.all_reduce(t)
    return int(t.item())
