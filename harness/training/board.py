"""Training curves where researchers look: every run that keeps a JSON-lines log (sources,
students, SFT, MASA's alignment, SemAlign's and LaTen's adaptation) also writes TensorBoard event
files, `<run dir>/tensorboard/<run>/`, and, when `HARNESS_WANDB_PROJECT` names a project, logs to
Weights & Biases (`WANDB_MODE=offline` keeps it on disk, under the run dir).

    tensorboard --logdir results/<profile>

The JSON log stays the record the reports read; these are views of it. A resumed run asks
TensorBoard to hide what the killed run logged past its checkpoint (`purge_step`), so its curve is
the uninterrupted run's, as its JSON log is, and W&B resumes the same run id.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path

from harness.errors import HarnessError

WANDB_PROJECT = "HARNESS_WANDB_PROJECT"
BOARD_DIR = "tensorboard"
VIEW_DIRS = (BOARD_DIR, "wandb")  # what a run's output keeps of its work dir beside the JSON log


def run_name(desc: str) -> str:
    """A run's name in TensorBoard and W&B, from its progress-bar description ("sft boolq")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", desc).strip("-") or "run"


def side_log(work_dir: Path | None, desc: str) -> Path | None:
    """Where a method's own training inside a stage (SemAlign's alignment, LaTen's translator) logs:
    a JSON-lines file in the stage's work dir (`ctx.work_dir`), with its TensorBoard view beside;
    None outside a stage (nothing logged)."""
    return work_dir / f"log-{run_name(desc)}.jsonl" if work_dir is not None else None


class Board:
    """Scalars of each log record: loss, learning rate, tokens per second, gradient norm, and every
    evaluation metric (`eval/<name>`)."""

    def __init__(self, run_dir: Path, desc: str, start_step: int = 0, start_tokens: int = 0,
                 config: dict | None = None):
        from torch.utils.tensorboard import SummaryWriter

        name = run_name(desc)
        self.tb = SummaryWriter(str(run_dir / BOARD_DIR / name), purge_step=start_step + 1 if start_step else None)
        self.last = (start_tokens, 0.0)  # tokens, seconds of the previous loss line (seconds restart on resume)
        self.wandb = _wandb_run(run_dir, name, config) if os.environ.get(WANDB_PROJECT) else None

    def write(self, record: dict) -> None:
        step, scalars = record["step"], {}
        for key in ("loss", "lr", "grad_norm", "l_out", "l_spec"):
            if isinstance(record.get(key), (int, float)):
                scalars[key] = record[key]
        if "seconds" in record and "tokens" in record:
            tokens, seconds = self.last
            if record["seconds"] > seconds:
                scalars["tokens_per_second"] = (record["tokens"] - tokens) / (record["seconds"] - seconds)
            self.last = (record["tokens"], record["seconds"])
        for key, value in (record.get("eval") or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                scalars[f"eval/{key}"] = value
        for key, value in scalars.items():
            self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        self.tb.close()
        if self.wandb is not None:
            import wandb

            self.wandb.finish()
            wandb.teardown()  # its service flushes the run's files only when it stops


def _wandb_run(run_dir: Path, name: str, config: dict | None):
    try:
        import wandb
    except ImportError:
        raise HarnessError(f"{WANDB_PROJECT} is set but wandb is not installed: pip install "
                           f"'knowledge-inheritance-harness[wandb]', or unset it") from None
    # one id per output, so that a resumed job continues its W&B run instead of starting another
    out = str(run_dir.resolve()).removesuffix(".work")
    run_id = hashlib.sha256(f"{out}/{name}".encode()).hexdigest()[:16]
    return wandb.init(project=os.environ[WANDB_PROJECT], name=name, id=run_id, resume="allow",
                      dir=str(run_dir), config=config or {}, reinit="create_new")
