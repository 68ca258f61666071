"""Distillation: token-level KD from a source teacher during the student's pre-training.

The loss is MiniLLM's KD baseline (LMOps `minillm/finetune.py:get_distil_loss`,
`--kd-ratio 0.5`): `L = (1 - alpha) * CE + alpha * KD`, KD the forward
KL(p_teacher || p_student) per predicted token, averaged over the tokens the
cross-entropy counts. MiniLLM drops the teacher's entropy from the KL (a
constant in the student's parameters: same gradients); keeping it here makes
the logged KD zero when the student matches the teacher. A temperature T != 1
softens both distributions and multiplies the KL by T^2 (Hinton et al., 2015),
so that its gradients keep their scale; T = 1, MiniLLM's setting, is the default.

The teacher is the row's source (config `methods: - {name: distill, source: ...}`).
It runs without gradients and its vocabulary must be the student's token for
token (a padded one, with rows past the tokenizer, gives its logits over the student's tokens). Its logits are produced from its last hidden states in chunks of
`chunk_tokens` positions, so a (batch x seq x vocab) teacher tensor never
exists: at the paper's scale that tensor alone would be several GB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.data.batches import IGNORE
from harness.errors import HarnessError
from harness.api.method import resolve_options
from harness.data.vocab import check_rows

DEFAULTS = {
    "alpha": 0.5,          # MiniLLM's --kd-ratio
    "temperature": 1.0,    # MiniLLM uses none (T = 1)
    "chunk_tokens": 4096,  # teacher logits are materialised this many positions at a time
}


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p_T || p_S) per position (last dim = vocabulary) at temperature T, times T^2, in float32.
    A token the teacher gives zero probability contributes nothing (its -inf logit is not a NaN)."""
    log_ps = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_pt = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    pt = log_pt.exp()
    terms = torch.where(pt > 0, pt * (log_pt - log_ps), torch.zeros((), device=pt.device))
    return terms.sum(-1) * temperature ** 2


def kd_loss(student_logits: torch.Tensor, labels: torch.Tensor, teacher_hidden: torch.Tensor,
            teacher_head: torch.nn.Module, temperature: float = 1.0, chunk_tokens: int = 4096) -> torch.Tensor:
    """Mean token KL over the positions that predict a label (labels are the inputs, shifted
    inside as the causal-LM cross-entropy does), teacher logits made chunk by chunk."""
    keep = labels[:, 1:] != IGNORE
    n = int(keep.sum())
    if n == 0:
        raise HarnessError("distill: a batch has no labelled token")
    student = student_logits[:, :-1][keep]  # (n, V)
    hidden = teacher_hidden[:, :-1][keep]  # (n, H)
    total = student.new_zeros((), dtype=torch.float32)
    for lo in range(0, n, chunk_tokens):
        with torch.no_grad():  # a padded teacher vocabulary: its logits over the student's tokens (harness/data/vocab.py)
            teacher = teacher_head(hidden[lo:lo + chunk_tokens])[:, :student.shape[-1]]
        total = total + token_kl(student[lo:lo + chunk_tokens], teacher, temperature).sum()
    return total / n


class Distillation:
    """Pre-training with KD from the source teacher (paper section 4.1, "Distillation")."""

    label = "Distillation"

    def __init__(self):
        self._teacher = None

    def _load_teacher(self, student, ctx):
        if ctx.source is None:
            raise HarnessError("distill needs a teacher: give its row a source (e.g. `source: olmo`)")
        teacher = ctx.source.load(ctx.device)
        check_rows("distill", ctx.source.name, teacher.config.vocab_size, student.config.vocab_size)
        tok = ctx.tokenizer
        if tok is not None:
            from harness.data.tokenizer import load_tokenizer

            if load_tokenizer(ctx.source.model_path).get_vocab() != tok.get_vocab():
                raise HarnessError(f"distill: teacher {ctx.source.name!r} tokenises differently from the student; "
                                   f"KD needs the same tokenizer")
        return teacher

    def pretrain_loss(self, batch: dict[str, torch.Tensor], student, ctx) -> torch.Tensor:
        opts = resolve_options("distill", DEFAULTS, ctx)
        if not 0.0 <= opts["alpha"] <= 1.0:
            raise HarnessError(f"distill: alpha must lie in [0, 1], got {opts['alpha']}")
        if self._teacher is None:
            self._teacher = self._load_teacher(student, ctx)
        out = student(**batch)
        # no_grad, not inference_mode: inference tensors cannot be saved for the KL's backward
        with torch.no_grad():
            hidden = self._teacher.base_model(input_ids=batch["input_ids"],
                                              attention_mask=batch.get("attention_mask")).last_hidden_state
        kd = kd_loss(out.logits, batch["labels"], hidden, self._teacher.get_output_embeddings(),
                     opts["temperature"], opts["chunk_tokens"])
        return (1 - opts["alpha"]) * out.loss + opts["alpha"] * kd
