"""Direct multiple-choice scoring in torch, for inner loops (EEP's fitness).

Reported numbers go through lm-eval (`evals/`); this computes the same
log-likelihoods (tested equal to lm-eval's accuracy) without lm-eval's
per-call start-up, in padded batches over all choices of many records.
"""

from __future__ import annotations

import torch

from harness.data.batches import encode_pair
from harness.data.tasks import TARGET_DELIMITER


def encode_choices(tokenizer, records: list[dict]) -> list[tuple[list[int], list[int]]]:
    """(context ids, continuation ids) of every choice of every record, record by record."""
    return [encode_pair(tokenizer, r["query"], TARGET_DELIMITER + c) for r in records for c in r["choices"]]


@torch.no_grad()
def continuation_logprobs(model, pairs: list[tuple[list[int], list[int]]], pad_id: int,
                          batch_size: int = 64) -> torch.Tensor:
    """Sum of log p(continuation | context) for each pair, as a float64 tensor."""
    device = next(model.parameters()).device
    out = []
    for lo in range(0, len(pairs), batch_size):
        chunk = pairs[lo:lo + batch_size]
        width = max(len(c) + len(r) for c, r in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        target = torch.zeros_like(ids, dtype=torch.bool)  # positions whose token is scored
        for i, (c, r) in enumerate(chunk):
            ids[i, :len(c) + len(r)] = torch.tensor(c + r)
            mask[i, :len(c) + len(r)] = 1
            target[i, len(c):len(c) + len(r)] = True
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None].to(device))[..., 0]
        out.append((logp * target[:, 1:].to(device)).sum(1).double().cpu())
    return torch.cat(out)


def choice_accuracy(scores: torch.Tensor, records: list[dict]) -> float:
    """Accuracy x100 of argmax-over-choices (ties go to the first choice, as in lm-eval)."""
    correct, i = 0, 0
    for r in records:
        n = len(r["choices"])
        correct += int(int(scores[i:i + n].argmax()) == r["gold"])
        i += n
    return 100.0 * correct / len(records)


def gold_loss(scores: torch.Tensor, records: list[dict], pairs: list[tuple[list[int], list[int]]]) -> float:
    """Mean per-token negative log-likelihood of the gold continuations."""
    nll, tokens, i = 0.0, 0, 0
    for r in records:
        g = i + r["gold"]
        nll -= float(scores[g])
        tokens += len(pairs[g][1])
        i += len(r["choices"])
    return nll / tokens
