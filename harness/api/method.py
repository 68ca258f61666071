"""The `Method` protocol: the optional hooks a knowledge-transfer method may implement.

A method is a plain class. It implements any subset of the hooks below; the
stage that would call a missing hook falls back to the default given in the
table. Methods never own a training loop: `harness.training.train` calls
`pretrain_loss` from inside the one shared loop.

| hook            | called                        | default when absent            |
|-----------------|-------------------------------|--------------------------------|
| `extract`       | once per (method, source)     | nothing is extracted           |
| `init_student`  | once per (student shape, seed)| random init (`build_student`)  |
| `pretrain_loss` | every pre-training step       | next-token cross-entropy       |
| `adapt`         | before SFT on each task       | the student unchanged          |
| `sft_loss`      | every SFT step                | cross-entropy on the answer    |

`pretrain_loss` and `sft_loss` are twins: Distillation shapes pre-training through one,
SemAlign adds its alignment loss to fine-tuning through the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, runtime_checkable

if TYPE_CHECKING:  # the protocol is importable without torch
    import numpy as np
    import torch
    from transformers import LlamaConfig, PreTrainedModel

    from harness.models.sources import Source
    from harness.data.tasks import Task

HOOKS = ("extract", "init_student", "pretrain_loss", "adapt", "sft_loss")


@dataclass
class ExtractData:
    """What an `extract` hook may read, each loaded only when asked for."""

    load_tokens: Callable[[], "np.ndarray | None"]
    seq_len: int
    domain_tokens: Callable[[str], "np.ndarray"]  # one corpus domain, tokenised by the source's tokenizer
    task_batches: Callable[..., Iterator["torch.Tensor"]]  # the tasks' train queries as batches of token ids
    task_records: Callable[[str], dict[str, list[dict]]]  # split -> {task: records}
    source_tokenizer: Callable[[], Any]

    @cached_property
    def tokens(self) -> "np.ndarray | None":
        """The pre-training token stream (its held-out tail cut off), checked to be in the
        source's tokenizer's ids."""
        return self.load_tokens()


@dataclass
class Context:
    """What every hook receives besides its own arguments.

    `options` are the method's settings: the registry variant's overrides on
    top of `config.method_options[<name>]`. `source` is None for methods run
    without a source (Scratch). `work_dir` is the directory a hook may write
    into (the artifact directory for `extract`; the SFT job's work dir for `adapt`, where a method's
    own training logs, `harness.training.board.side_log`). `data` is set for `extract`;
    `tokenizer`, the student's, for `pretrain_loss`, `adapt` and `sft_loss`.
    """

    options: dict[str, Any]
    seed: int
    device: "torch.device"
    source: "Source | None" = None
    work_dir: Path | None = None
    data: ExtractData | None = None
    tokenizer: Any = None


class Method(Protocol):
    """What every method has. The hooks are separate protocols below: a method
    implements any subset of them (Scratch implements none)."""

    name: str  # set by the registry: the `{method}` wildcard
    label: str  # default table label, e.g. "Scratch"


@runtime_checkable
class Extracts(Protocol):
    def extract(self, ctx: Context) -> dict[str, Any]:
        """Write the artifact for `ctx.source` into `ctx.work_dir`; return manifest fields."""
        ...


@runtime_checkable
class InitsStudent(Protocol):
    def init_student(self, config: "LlamaConfig", artifact: Path | None, ctx: Context) -> "PreTrainedModel":
        """Return the student, shaped by `config`, before pre-training (torch is seeded with `ctx.seed`)."""
        ...


@runtime_checkable
class ShapesPretrainLoss(Protocol):
    def pretrain_loss(self, batch: dict[str, "torch.Tensor"], student: "PreTrainedModel",
                      ctx: Context) -> "torch.Tensor":
        """Return the scalar loss of one pre-training batch."""
        ...


@runtime_checkable
class Adapts(Protocol):
    def adapt(self, student: "PreTrainedModel", task: "Task", ctx: Context) -> "PreTrainedModel":
        """Return the model SFT on `task` starts from."""
        ...


@runtime_checkable
class ShapesSFTLoss(Protocol):
    def sft_loss(self, batch: dict[str, "torch.Tensor"], student: "PreTrainedModel",
                 ctx: Context) -> "torch.Tensor":
        """Return the scalar loss of one SFT batch (`adapt`, when the method has it, ran first)."""
        ...


def resolve_options(name: str, defaults: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The method's defaults overridden by `ctx.options`; an unknown option is a one-line error
    (a typo in the config must not silently run the default)."""
    from harness.errors import HarnessError

    unknown = sorted(set(ctx.options) - set(defaults))
    if unknown:
        raise HarnessError(f"{name}: unknown option {unknown[0]!r}; options: {', '.join(defaults)}")
    return {**defaults, **ctx.options}


def source_model(name: str, ctx: Context):
    """The row's source model, frozen on `ctx.device`; a row without one is a one-line error
    naming the method."""
    from harness.errors import HarnessError

    if ctx.source is None:
        raise HarnessError(f"{name} needs a source: give its table row one (e.g. `source: olmo`)")
    return ctx.source.load(ctx.device)


def frozen_source(name: str, ctx: Context):
    """(model, tokenizer) of the row's source (see `source_model`)."""
    from harness.data.tokenizer import load_tokenizer

    return source_model(name, ctx), load_tokenizer(ctx.source.model_path)


def hooks_of(cls: type) -> frozenset[str]:
    """The hooks a method class implements."""
    return frozenset(h for h in HOOKS if callable(getattr(cls, h, None)))


def hook(method: object, name: str):
    """The bound hook `name` of `method`, or None when the method leaves it to the default."""
    if name not in HOOKS:
        raise ValueError(f"unknown hook {name!r}; hooks are {', '.join(HOOKS)}")
    return getattr(method, name, None)
