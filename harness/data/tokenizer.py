"""A byte-level BPE tokenizer trained on the generated corpus (micro profiles)."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from harness.errors import HarnessError, first_line

EOS = "<|endoftext|>"
PAD = "<|padding|>"


def train_tokenizer(corpus: Path, vocab_size: int) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([str(corpus)], trainer)
    # the GPT-NeoX/OLMo convention: one <|endoftext|> serves as BOS, EOS and UNK
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS,
                                   unk_token=EOS, pad_token=PAD)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer (a local dir or hub id) and make sure it can pad."""
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot load tokenizer from {path}: {first_line(e)}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def identity(tok) -> dict:
    """What says two tokenizers map text to the same ids: their size and a hash of the vocabulary
    (token -> id). Written beside a token stream, checked by every method that feeds the stream to
    a model (MASA's alignment): a source with another tokenizer would read meaningless text."""
    import hashlib
    import json

    vocab = json.dumps(sorted(tok.get_vocab().items()), ensure_ascii=False).encode()
    return {"size": len(tok), "vocab_sha256": hashlib.sha256(vocab).hexdigest()[:16]}


def check_same_tokenizer(tok, stream_identity: dict | None, what: str) -> None:
    """A one-line error unless `tok` is the tokenizer that made a stream (`identity`); a stream
    written before identities were recorded is not checked."""
    if stream_identity and identity(tok) != stream_identity:
        raise HarnessError(f"{what} was tokenised by another tokenizer ({stream_identity['size']} tokens, vocabulary "
                           f"{stream_identity['vocab_sha256']}) than this source's ({len(tok)} tokens, vocabulary "
                           f"{identity(tok)['vocab_sha256']}): its ids would be other text to this source")


def special_ids(tok) -> dict[str, int]:
    return {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
