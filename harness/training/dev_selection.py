"""Choosing an SFT run's model on a dev set (an SFT section's `dev:`).

Every `every_epochs` epochs the model is scored on the task's dev split: Rouge-L of its
greedy answers (`metric: rougeL`, a generation task; MiniLLM's protocol) or the mean loss
on the answer tokens (`metric: loss`, any task). `keep` says which model is saved: the last
step's or the best evaluation's. `patience: N` ends the run once N evaluations in a row
have not improved on the best, which is how the harness reads "fine-tuned until
convergence" (paper L160); `epochs` is then the cap. A task without a dev split (the
multiple-choice tasks) lends `holdout` of its train records, drawn by the seed and not
trained on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from harness.training import distributed
from harness.errors import HarnessError

HIGHER_IS_BETTER = {"rougeL": True, "loss": False}
_HOLDOUT_STREAM = 7  # the holdout's own random stream, apart from the batches' order


def split_dev(task, records: list[dict], dev_cfg: dict, seed: int) -> tuple[list[dict], list[dict]]:
    """(train records, dev records): the task's dev split if it has one, else `holdout` of
    `records` taken out of training; at most `examples` dev records either way."""
    if task.path("dev").is_file():
        dev = task.records("dev")
    else:
        share = dev_cfg.get("holdout")
        if not share:
            raise HarnessError(f"task {task.name!r} has no dev split ({task.path('dev')}); set `dev.holdout`, "
                               f"the share of its train records to hold out")
        n = round(share * len(records))
        if not 0 < n < len(records):
            raise HarnessError(f"task {task.name!r}: dev.holdout {share} of {len(records)} train records "
                               f"leaves no dev or no train record")
        held = set(np.random.default_rng([seed, _HOLDOUT_STREAM]).permutation(len(records))[:n].tolist())
        dev = [r for i, r in enumerate(records) if i in held]
        records = [r for i, r in enumerate(records) if i not in held]
    return records, dev[:dev_cfg.get("examples")]


@torch.no_grad()
def answer_loss(model, pairs: list[tuple[list[int], list[int]]], pad_id: int, max_len: int,
                batch_size: int = 8) -> float:
    """The mean negative log-likelihood of the answer tokens of (prompt, answer) id pairs,
    over all answer tokens (each token weighs the same, whichever pair it is in), cut to
    `max_len` as training cuts them."""
    from harness.data.batches import IGNORE, collate

    device = next(model.parameters()).device
    total, count = torch.zeros((), dtype=torch.float64), 0
    for i in range(0, len(pairs), batch_size):
        batch = collate(pairs[i:i + batch_size], pad_id, max_len)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits.float()
        labels = batch["labels"][:, 1:].to(device)
        total += torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(),
                                                   ignore_index=IGNORE, reduction="sum").double().cpu()
        count += int((labels != IGNORE).sum())
    return float(total / count)


class DevSelection:
    """The evaluation `train` runs every `every_epochs`: scores the model with `score` (higher
    or lower is better as `metric` says), counts evaluations since the best (a strict
    improvement; the first of equals), and with `keep: best` holds the best one's weights in
    CPU memory (a sharded model's gathered on rank 0, every rank agreeing on what is best).
    A run resumed after a kill counts only the evaluations since the resume."""

    def __init__(self, score: Callable[[torch.nn.Module], float], metric: str, keep: str = "last",
                 patience: int | None = None):
        self.score, self.metric, self.keep, self.patience = score, metric, keep, patience
        self.best, self.best_index, self.evaluations, self.waited, self.state = None, None, 0, 0, None

    def __call__(self, model) -> dict:
        value = self.score(model)
        self.evaluations += 1
        better = self.best is None or (value > self.best if HIGHER_IS_BETTER[self.metric] else value < self.best)
        sharded = distributed.is_sharded(model)
        if sharded:  # every rank scored; rank 0's verdict decides the collective gather below
            better = distributed.agree(better)
        if better:
            self.best, self.best_index, self.waited = value, self.evaluations, 0
            if self.keep == "best":
                self.state = (distributed.full_state_dict(model) if sharded else
                              {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        else:
            self.waited += 1
        return {self.metric: value}

    def converged(self) -> bool:
        return self.patience is not None and self.waited >= self.patience

    def restore_best(self, model) -> None:
        """Put the kept weights back into `model` (every rank of a sharded run calls this)."""
        if self.keep == "best" and self.best_index is not None:
            distributed.load_full_state_dict(model, self.state)

    def record(self) -> dict:
        """What the run record says about the selection."""
        return {"metric": self.metric, "evaluations": self.evaluations, "best": self.best,
                "best_evaluation": self.best_index, "kept": self.keep,
                **({"patience": self.patience, "converged": self.converged()} if self.patience else {})}
