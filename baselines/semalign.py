"""SemAlign (Gu, Aleti, Chen, Zhang; arXiv 2510.24208): knowledge transferred through activations,
not weights. A teacher layer's output, mapped into the student's space through vocabulary-defined
semantic bases, is the target of the paired student layer's output (docs/methods.md).

v1 (the withdrawn ICLR'26 submission, fully described; the default):
1. Semantic bases: `S = pinv(W_head)` (d x V), columns at unit length, for teacher and student.
   Decomposing h on the teacher's bases and recomposing on the student's is the fixed linear
   map `P = S_S S_T^T` (d_S x d_T), computed once per pair, so no V-sized tensor per token.
2. The critical teacher layer: Layer Gradient x Activation of the teacher's response-only loss
   on the alignment examples, one score per layer.
3. Pairing: student layer k reads teacher layer `l_T(k) = max(1, floor(L_T/L_S k))`; the critical
   layer l* goes to `k = min{k : l_T(k) >= l*}`, its target interpolated between teacher layers
   a and a+1 when the depth ratio is not whole.
4. Loss `L_layer + L_out`: `1 - mean cos(h_S, P h_T)` at the paired layer, `1 - mean cos(z_S,
   onehot(y))` on the logits. Teacher targets are constants.
5. Protocol "following LaTen": LoRA r = 16 on up/down/v/o, trained on the task.

v2 (arXiv v2; abstract only, every detail below it is ours): every student layer paired; the
layer loss is 1 - linear CKA between the centred token-token Grams of the layer's residual
contribution (`h_out - h_in`) and of the teacher's, mapped by P; the output loss is
KL(p_teacher || p_student); alignment runs shallow to deep, only the frontier layer trainable.

What the text leaves open is an option below, each marked "ours" or with the reading it
follows. A source whose tokenizer is not the student's (index-aligned bases) is refused; a
padded source vocabulary gives its bases of the student's tokens (harness/data/vocab.py).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harness.models import lora
from harness.data.batches import IGNORE, collate, sft_pairs
from harness.errors import HarnessError
from harness.api.method import frozen_source, resolve_options
from harness.data.vocab import check_rows

DEFAULTS = {
    **lora.DEFAULTS,
    "modules": ["up_proj", "down_proj", "v_proj", "o_proj"],  # the protocol's LoRA targets
    "version": 1,
    # docs/methods.md: the text puts alignment "in the training phase" and also gives alignment
    # steps; "joint" adds L_layer + L_out to the task loss during SFT (weight `align_weight`);
    # "before" runs `align_steps` alignment steps first, only the paired layer(s) trainable
    "schedule": "joint",
    "align_weight": 1.0,
    "align_examples": 32,      # the text's alignment sets: 32 / 64 / 48 / 128 examples
    "align_steps": 2,          # "before": the text's 2 / 4 / 3 / 8 steps
    "align_lr": 3.0e-5,
    # ours: where "a layer's output" is read. "mlp": the FFN sublayer's output before the residual
    # add (the text's "sublayer output before the residual add"); "attn": the attention's
    "site": "mlp",
    # ours: Gradient x Activation summed over tokens and channels as |h * dL/dh| ("abs"; signed
    # terms cancel) or as the plain signed sum ("signed")
    "attribution": "abs",
    "max_len": 1024,
}
SITES = ("mlp", "attn")
SCHEDULES = ("joint", "before")


# ---------------------------------------------------------------- semantic bases

def semantic_bases(head: Tensor) -> Tensor:
    """S = pinv(W_head) (d x V) with unit columns, for an LM head (V x d), in float64."""
    S = torch.linalg.pinv(head.detach().double())
    return S / S.norm(dim=0, keepdim=True).clamp_min(1e-30)


def projection(student_head: Tensor, teacher_head: Tensor) -> Tensor:
    """P = S_S S_T^T (d_S x d_T): decompose on the teacher's bases, recompose on the student's."""
    if student_head.shape[0] != teacher_head.shape[0]:
        raise HarnessError(f"semalign: the teacher's vocabulary has {teacher_head.shape[0]} tokens, the student's "
                           f"{student_head.shape[0]}; semantic bases are matched token by token")
    return (semantic_bases(student_head) @ semantic_bases(teacher_head).T).float()


# ---------------------------------------------------------------- pairing (1-indexed layers, as the text)

def teacher_layer(k: int, n_teacher: int, n_student: int) -> int:
    """l_T(k) = max(1, floor(L_T / L_S * k)), in exact integer arithmetic."""
    return max(1, n_teacher * k // n_student)


def student_layer(critical: int, n_teacher: int, n_student: int) -> int:
    """k = min{k : l_T(k) >= l*}, else L_S."""
    return next((k for k in range(1, n_student + 1) if teacher_layer(k, n_teacher, n_student) >= critical),
                n_student)


def interpolation(k: int, n_teacher: int, n_student: int) -> tuple[int, int, float]:
    """(a, b, lambda): the target of student layer k is (1 - lambda) h_T^(a) + lambda h_T^(b)."""
    u = n_teacher * k / n_student
    a = max(1, min(math.floor(u), n_teacher - 1)) if n_teacher > 1 else 1
    b = min(a + 1, n_teacher)
    return a, b, min(max(u - a, 0.0), 1.0)


# ---------------------------------------------------------------- losses

def cosine_layer_loss(h_student: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """1 - mean over the masked positions of cos(h_S, target): (B, T, d) each, mask (B, T)."""
    cos = F.cosine_similarity(h_student.float(), target.float(), dim=-1, eps=1e-8)
    return 1 - cos[mask.bool()].mean()


def onehot_output_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """1 - mean cos(z, onehot(y)) = 1 - mean z_y / ||z|| over the labelled next-token positions."""
    z, y = logits[:, :-1].float(), labels[:, 1:]
    keep = y != IGNORE
    if not keep.any():
        raise HarnessError("semalign: a batch has no labelled token")
    z, y = z[keep], y[keep]
    return 1 - (z.gather(1, y[:, None])[:, 0] / z.norm(dim=-1).clamp_min(1e-8)).mean()


def centred_gram_loss(delta_student: Tensor, delta_teacher: Tensor, mask: Tensor) -> Tensor:
    """1 - mean over sequences of linear CKA between the centred token-token Grams (v2)."""
    losses = []
    for ds, dt, m in zip(delta_student.float(), delta_teacher.float(), mask.bool()):
        ds, dt = ds[m], dt[m]
        n = ds.shape[0]
        if n == 0:  # a sequence with no answer token has no Gram to align
            continue
        H = torch.eye(n, device=ds.device) - 1.0 / n
        gs, gt = H @ ds @ ds.T @ H, H @ dt @ dt.T @ H
        cka = (gs * gt).sum() / (gs.norm() * gt.norm()).clamp_min(1e-12)
        losses.append(1 - cka)
    if not losses:  # no answer token in the batch: nothing to align, and no gradient
        return delta_student.float().sum() * 0.0
    return torch.stack(losses).mean()


def kl_output_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor) -> Tensor:
    """Mean KL(p_T || p_S) over the labelled next-token positions (v2's output loss)."""
    from baselines.distill import token_kl

    keep = labels[:, 1:] != IGNORE
    teacher_logits = teacher_logits[..., :student_logits.shape[-1]]  # a padded teacher vocabulary
    return token_kl(student_logits[:, :-1][keep], teacher_logits[:, :-1][keep]).mean()


# ---------------------------------------------------------------- reading activations

def decoder_layers(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model.layers


@contextmanager
def capture(model, layers: list[int], site: str, residual: bool = False):
    """{layer (0-indexed): output} of `site` ("mlp" / "attn") in the given decoder layers, filled by
    the next forward; with `residual`, {layer: h_out - h_in} of the whole decoder layer."""
    got: dict[int, Tensor] = {}
    handles = []
    blocks = decoder_layers(model)

    def first(value):
        return value[0] if isinstance(value, tuple) else value

    for l in layers:
        if residual:
            def hook(module, args, kwargs, out, l=l):
                got[l] = first(out) - (args[0] if args else kwargs["hidden_states"])
            handles.append(blocks[l].register_forward_hook(hook, with_kwargs=True))
        else:
            module = blocks[l].mlp if site == "mlp" else blocks[l].self_attn
            handles.append(module.register_forward_hook(lambda m, a, out, l=l: got.__setitem__(l, first(out))))
    try:
        yield got
    finally:
        for h in handles:
            h.remove()


def layer_attribution(teacher, batches: list[dict[str, Tensor]], site: str, how: str = "abs") -> Tensor:
    """(L_T,) Gradient x Activation of the teacher's response-only loss at each layer's `site`,
    summed over the batches, tokens and channels. The teacher stays frozen: the graph starts
    at its input embeddings, which alone require a gradient."""
    n = len(decoder_layers(teacher))
    scores = torch.zeros(n, dtype=torch.float64)
    for batch in batches:
        embeds = teacher.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
        with capture(teacher, list(range(n)), site) as acts, torch.enable_grad():
            loss = teacher(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
            grads = torch.autograd.grad(loss, [acts[l] for l in range(n)], allow_unused=True)
        for l, g in enumerate(grads):
            if g is not None:
                prod = (acts[l].detach() * g).double()
                scores[l] += (prod.abs() if how == "abs" else prod).sum().item()
    return scores


@dataclass
class Plan:
    """Which student layers are aligned to which teacher layers (0-indexed), and how."""

    pairs: dict[int, tuple[int, int, float]]  # student layer -> (teacher a, teacher b, lambda)
    P: Tensor


class SemAlign:
    label = "SemAlign"

    def options(self, ctx) -> dict:
        o = resolve_options(self.name, DEFAULTS, ctx)
        if o["version"] not in (1, 2):
            raise HarnessError(f"{self.name}: unknown version {o['version']!r}; use 1 or 2")
        if o["schedule"] not in SCHEDULES:
            raise HarnessError(f"{self.name}: unknown schedule {o['schedule']!r}; use {' or '.join(SCHEDULES)}")
        if o["site"] not in SITES:
            raise HarnessError(f"{self.name}: unknown site {o['site']!r}; use {' or '.join(SITES)}")
        if o["attribution"] not in ("abs", "signed"):
            raise HarnessError(f"{self.name}: unknown attribution {o['attribution']!r}; use abs or signed")
        return o

    def adapt(self, student, task, ctx):
        o = self.options(ctx)
        teacher, teacher_tok = frozen_source(self.name, ctx)
        tok = ctx.tokenizer
        if teacher_tok.get_vocab() != tok.get_vocab():
            raise HarnessError(f"{self.name}: teacher {ctx.source.name!r} tokenises differently from the student; "
                               f"semantic bases are matched token by token")
        student.to(ctx.device)
        rows = student.config.vocab_size
        check_rows(self.name, ctx.source.name, teacher.config.vocab_size, rows)
        P = projection(student.get_output_embeddings().weight, teacher.get_output_embeddings().weight[:rows])
        records = task.records("train")
        order = np.random.default_rng(0).permutation(len(records))[:o["align_examples"]]
        pairs = sft_pairs(tok, [records[i] for i in order])
        per_step = math.ceil(len(pairs) / max(1, o["align_steps"]))
        batches = [{k: v.to(ctx.device) for k, v in collate(pairs[i:i + per_step], tok.pad_token_id,
                                                             o["max_len"]).items()}
                   for i in range(0, len(pairs), per_step)]
        n_t, n_s = len(decoder_layers(teacher)), student.config.num_hidden_layers
        if o["version"] == 1:
            scores = layer_attribution(teacher, batches, o["site"], o["attribution"])
            critical = int(scores.argmax()) + 1
            k = student_layer(critical, n_t, n_s)
            ks = [k]
        else:
            critical, ks = None, list(range(1, n_s + 1))
        plan = Plan({k - 1: (a - 1, b - 1, lam) for k in ks for a, b, lam in [interpolation(k, n_t, n_s)]},
                    P.to(ctx.device))
        self._teacher, self._plan, self._opts = teacher, plan, o
        print(f"{self.name}: v{o['version']}, student layer(s) {[k + 1 for k in plan.pairs]} <- teacher "
              f"{[(a + 1, b + 1, round(lam, 3)) for a, b, lam in plan.pairs.values()]}"
              + (f" (critical teacher layer {critical})" if critical else ""))
        if o["schedule"] == "before":
            self._align_before(student, batches, o, task.name, ctx.work_dir)
        return lora.attach(student, o["rank"], o["alpha"], o["dropout"], o["modules"], init="gaussian")

    def _align_before(self, student, batches, o, task_name: str, work_dir=None) -> None:
        """`align_steps` steps of the alignment loss alone, only the paired layer(s) trainable; v2
        walks its layers shallow to deep, `align_steps` steps (and one optimiser) per frontier layer."""
        from harness.training.board import side_log
        from harness.training.train import OptimConfig, TrainSettings, train

        optim = OptimConfig(lr=o["align_lr"], weight_decay=0.0, warmup=0.0, min_lr_ratio=1.0, grad_clip=1.0)
        groups = [[k] for k in sorted(self._plan.pairs)] if o["version"] == 2 else [sorted(self._plan.pairs)]
        layers = decoder_layers(student)
        steps = _Fixed([batches[s % len(batches)] for s in range(max(1, o["align_steps"]))])
        for group in groups:
            student.requires_grad_(False)
            for k in group:
                layers[k].requires_grad_(True)
            desc = f"{self.name} align {task_name} layer(s) {[k + 1 for k in group]}"
            train(student, steps, TrainSettings(optim, log_every=1),
                  loss_fn=lambda batch, model, group=group: self.alignment_loss(batch, model, group)[1],
                  desc=desc, log_path=side_log(work_dir, desc))
        student.requires_grad_(True)

    def alignment_loss(self, batch: dict[str, Tensor], student, layers: list[int] | None = None
                       ) -> tuple[Tensor, Tensor]:
        """(the student's task loss, the alignment loss) of one batch, over the plan's pairs (or `layers`)."""
        o, plan = self._opts, self._plan
        layers = sorted(plan.pairs) if layers is None else layers
        teacher_layers = sorted({t for k in layers for t in plan.pairs[k][:2]})
        v2 = o["version"] == 2
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        with torch.no_grad(), capture(self._teacher, teacher_layers, o["site"], residual=v2) as t_acts:
            t_out = self._teacher(**inputs)
        with capture(student, layers, o["site"], residual=v2) as s_acts:
            out = student(**batch)
        mask = batch["attention_mask"]
        layer_losses = []
        for k in layers:
            a, b, lam = plan.pairs[k]
            target = ((1 - lam) * t_acts[a] + lam * t_acts[b]).float() @ plan.P.T  # P h_T
            if v2:
                layer_losses.append(centred_gram_loss(s_acts[k], target, mask))
            else:
                layer_losses.append(cosine_layer_loss(s_acts[k], target, mask))
        output = (kl_output_loss(out.logits, t_out.logits, batch["labels"]) if v2
                  else onehot_output_loss(out.logits, batch["labels"]))
        return out.loss, torch.stack(layer_losses).mean() + output

    def sft_loss(self, batch: dict[str, Tensor], student, ctx) -> Tensor:
        """The task's cross-entropy, plus the alignment loss under `schedule: joint`."""
        if self._opts["schedule"] != "joint":
            return student(**batch).loss
        task, align = self.alignment_loss(batch, student)
        return task + self._opts["align_weight"] * align


class _Fixed:
    """A fixed list of batches as the training loop's `Batches`."""

    def __init__(self, batches: list[dict[str, Tensor]]):
        self.batches = batches
        self.steps = len(batches)

    def batch(self, step: int) -> dict[str, Tensor]:
        return self.batches[step]
