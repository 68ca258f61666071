"""Which GPU a job uses when several jobs share one machine.

Snakemake limits how many GPU jobs run at once (`resources: gpu=N` in
profiles/local-gpu) but does not say which GPU each one gets. Each job claims
the first visible GPU no other job holds, by an exclusive lock on a file per
device, held until the process exits (the kernel drops it even on a kill). Under
SLURM a job sees only its own GPUs, so it simply claims device 0.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from harness.errors import HarnessError

_held: list[int] = []  # open lock files: the claim lasts as long as the process


def claim_device(n_devices: int, lock_dir: Path | None = None) -> int:
    """Index of the first of `n_devices` devices whose lock this process could take."""
    lock_dir = Path(lock_dir or os.environ.get("HARNESS_GPU_LOCKS", Path(tempfile.gettempdir()) / "harness-gpus"))
    lock_dir.mkdir(parents=True, exist_ok=True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "-")
    for i in range(n_devices):
        fd = os.open(lock_dir / f"{visible}.{i}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        return i
    raise HarnessError(f"all {n_devices} GPUs are held by other jobs; run with `--resources gpu={n_devices}` "
                       f"(profiles/local-gpu) so Snakemake starts no more GPU jobs than there are GPUs")


def claim_gpu() -> None:
    """Make a free GPU the current CUDA device (nothing on a machine without one)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(claim_device(torch.cuda.device_count()))


def compute_device():
    """The torch device a stage computes on: the (claimed) GPU where there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
