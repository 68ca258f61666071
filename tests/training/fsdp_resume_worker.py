"""Run under torch.distributed.run by test_distributed.py: a sharded (FSDP) training run
killed after its step-5 checkpoint and resumed must end with the weights of an
uninterrupted sharded run. Rank 0 writes the largest weight difference to argv[1]."""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from harness.training import distributed
from harness.data.batches import PretrainBatches
from harness.models.build import build_model, student_config
from harness.training.train import OptimConfig, TrainSettings, train


class Killed(Exception):
    pass


def model(seed: int):
    return build_model(student_config("t", {"layers": 2, "hidden": 16, "ffn": 32, "heads": 2}, 97, 32), seed)


def killed_at(step: int):
    calls = iter(range(10**6))

    def loss(batch, m):
        if next(calls) == step:
            raise Killed
        return m(**batch).loss
    return loss


def main(out: str, work: str) -> None:
    distributed.init()
    batches = PretrainBatches(np.arange(10_000, dtype=np.int32) % 97, 16, 4, 16 * 4 * 12, seed=0)
    optim = OptimConfig(lr=1e-2, warmup=0.1)
    reference = model(0)
    train(reference, batches, TrainSettings(optim, fsdp=True))
    interrupted = model(0)
    try:
        train(interrupted, batches, TrainSettings(optim, fsdp=True, checkpoint_every=5), ckpt_dir=Path(work),
              loss_fn=killed_at(7))
        raise AssertionError("the run was not killed")
    except Killed:
        pass
    resumed = model(123)  # the checkpoint, not the init, must decide the weights
    train(resumed, batches, TrainSettings(optim, fsdp=True, checkpoint_every=5), ckpt_dir=Path(work))
    a, b = distributed.full_state_dict(reference), distributed.full_state_dict(resumed)
    if distributed.is_main():
        diff = max((a[k] - b[k]).abs().max().item() for k in a)
        with open(out, "w") as f:
            json.dump({"max_diff": diff, "tensors": len(a)}, f)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
