"""What a training step keeps in memory, measured: the bytes autograd saves for the backward of a
student's loss (every saved tensor's storage once, parameters aside) under the bf16 autocast a
GPU trains in. `harness.workflow.plan` estimates the paper's jobs from coefficients fitted to
these measurements on small shapes (`fit`), and a test checks its estimate against a fresh
measurement at shapes it was not fitted on."""

from __future__ import annotations

import numpy as np
import torch

# the features a saved-bytes estimate is linear in (harness.workflow.plan.ACTIVATION)
FEATURES = ("params", "tokens", "tokens_layers_hidden", "tokens_layers_ffn", "tokens_hidden", "tokens_vocab")


def features(shape: dict, vocab: int, tokens: int, params: int) -> list[float]:
    L, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    return [params, tokens, tokens * L * h, tokens * L * f, tokens * h, tokens * vocab]


def saved_by(fn, leaves=()) -> int:
    """Bytes autograd saves for the backward while `fn()` runs: every saved tensor's storage once,
    the storages of `leaves` (parameters: they exist anyway) aside."""
    skip = {t.untyped_storage().data_ptr() for t in leaves}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def saved_bytes(shape: dict, vocab: int, batch: int, seq_len: int, seed: int = 0) -> tuple[int, int]:
    """(bytes autograd saves for one forward of a `shape` student on batch x seq_len tokens under
    bf16 autocast, its parameter count)."""
    from harness.models.build import build_model, student_config

    model = build_model(student_config("probe", shape, vocab, seq_len, None), seed)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=torch.Generator().manual_seed(seed))

    def forward():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(input_ids=ids, labels=ids).loss

    return saved_by(forward, list(model.parameters())), sum(p.numel() for p in model.parameters())


# small shapes the coefficients are fitted on: (layers, hidden, ffn, heads, vocab, batch, seq_len)
FIT_SHAPES = [(1, 64, 128, 2, 512, 2, 64), (2, 64, 128, 2, 512, 4, 64), (2, 128, 128, 2, 512, 2, 64),
              (2, 64, 256, 2, 512, 2, 128), (2, 64, 128, 2, 1024, 2, 64), (3, 96, 192, 4, 768, 2, 96),
              (1, 128, 384, 4, 1024, 4, 32), (2, 128, 256, 4, 1024, 2, 128)]


def fit() -> dict[str, float]:
    """Least-squares coefficients of FEATURES against measured saved bytes at FIT_SHAPES."""
    rows, ys = [], []
    for L, h, f, heads, vocab, batch, seq_len in FIT_SHAPES:
        shape = {"layers": L, "hidden": h, "ffn": f, "heads": heads}
        saved, params = saved_bytes(shape, vocab, batch, seq_len)
        rows.append(features(shape, vocab, batch * seq_len, params))
        ys.append(saved)
    coef, *_ = np.linalg.lstsq(np.array(rows, dtype=float), np.array(ys, dtype=float), rcond=None)
    return {name: round(float(c), 4) for name, c in zip(FEATURES, coef)}
