"""Padded vocabularies: a source may have more embedding and LM-head rows than its tokenizer
has tokens. OLMo-7B-hf and OLMoE-1B-7B-0924 have 50,304 rows for the 50,280 tokens of their
tokenizer (padded to a multiple of 64 for the GEMMs); the students are built with the
tokenizer's length. The rows past it are never an input and never a label, so every method
reads the source's first `len(tokenizer)` rows (its logits over the real tokens), and a
source with fewer rows than the student's tokens is refused in one line.
"""

from __future__ import annotations

from harness.errors import HarnessError


def check_rows(method: str, source: str, source_rows: int, student_rows: int) -> None:
    """Refuse a source whose vocabulary cannot cover the student's token ids."""
    if source_rows < student_rows:
        raise HarnessError(f"{method}: source {source!r} has a vocabulary of {source_rows} tokens, the student "
                           f"{student_rows}; the student's tokens must be the source's (the same tokenizer)")


def truncate_rows(model, rows: int) -> None:
    """Keep the first `rows` rows of `model`'s input embeddings and (untied) LM head, in place."""
    if model.config.vocab_size > rows:
        model.resize_token_embeddings(rows, mean_resizing=False)
