"""Batches for the training loop: packed pre-training sequences and SFT examples.

Both batch sources are pure functions of the step index (`batch(step)`), with
the order fixed by a seed. That makes a resumed run see exactly the batches
an uninterrupted run would have seen, with no data-loader state to save.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.errors import HarnessError

IGNORE = -100  # label id the cross-entropy skips


def iter_documents(corpus: Path, chunk_chars: int = 1 << 22) -> Iterator[str]:
    """The corpus's documents (separated by a blank line), read `chunk_chars` at a time: exactly
    `text.split("\\n\\n")` without blank parts, in memory bounded by the longest document."""
    rest = ""
    with corpus.open(encoding="utf-8") as f:
        while chunk := f.read(chunk_chars):
            *docs, rest = (rest + chunk).split("\n\n")
            yield from (d for d in docs if d.strip())
    if rest.strip():
        yield rest


def _token_chunks(corpus: Path, tokenizer, docs_per_call: int) -> Iterator[np.ndarray]:
    """The corpus's token ids, documents joined by EOS, a few thousand documents at a time."""
    docs = iter_documents(corpus)
    while batch := list(itertools.islice(docs, docs_per_call)):
        ids = tokenizer(batch, add_special_tokens=False)["input_ids"]
        yield np.fromiter((t for doc in ids for t in (*doc, tokenizer.eos_token_id)), dtype=np.int32)


def tokenize_corpus(corpus: Path, tokenizer, docs_per_call: int = 2000) -> np.ndarray:
    """Token ids of the corpus, documents (blank-line separated) joined by EOS."""
    chunks = list(_token_chunks(corpus, tokenizer, docs_per_call))
    if not chunks:
        raise HarnessError(f"corpus {corpus} is empty")
    return np.concatenate(chunks)


def quota_chunks(domains: Path, tokenizer, quota: dict[str, int], docs_per_call: int = 2000) -> Iterator[np.ndarray]:
    """Exactly `quota[d]` tokens of each domain's documents (`domains/<d>.txt`, as the corpus stage
    writes them), chunk by chunk, always from the domain furthest behind its share, so that every
    prefix of the stream holds the mixture; a domain that runs out first is a one-line error."""
    streams = {d: _token_chunks(domains / f"{d}.txt", tokenizer, docs_per_call) for d in quota}
    for d in quota:
        if not (domains / f"{d}.txt").is_file():
            raise HarnessError(f"corpus quota: no documents of {d!r} in {domains} (it has "
                               f"{', '.join(sorted(p.stem for p in domains.glob('*.txt'))) or 'none'})")
    taken = dict.fromkeys(quota, 0)
    while open_ := [d for d in quota if taken[d] < quota[d]]:
        d = min(open_, key=lambda name: taken[name] / quota[name])
        ids = next(streams[d], None)
        if ids is None:
            raise HarnessError(f"corpus quota: {d!r} holds {taken[d]:,} tokens, fewer than its quota of "
                               f"{quota[d]:,} ({domains / f'{d}.txt'}); download more of it or lower corpus.quota.{d}")
        ids = ids[:quota[d] - taken[d]]
        taken[d] += len(ids)
        yield ids


def write_tokens(corpus: Path, tokenizer, out: Path, docs_per_call: int = 2000,
                 quota: dict[str, int] | None = None) -> int:
    """Tokenise the corpus into the .npy file `out` as it streams by (memory: one chunk of
    documents, not the corpus: the paper's corpora are tens of GB); returns the token count.
    With `quota`, the stream is `quota_chunks` of the corpus's domains instead.
    The ids go to a raw temporary file first, since an .npy header states the length."""
    from tqdm import tqdm

    raw = out.with_name(out.name + ".tmp.bin")
    n = 0
    try:
        with raw.open("wb") as f, tqdm(desc=f"tokenise {corpus.name}", unit="tok", unit_scale=True,
                                        mininterval=5.0) as bar:
            chunks = (quota_chunks(corpus.parent / "domains", tokenizer, quota, docs_per_call) if quota
                      else _token_chunks(corpus, tokenizer, docs_per_call))
            for ids in chunks:
                f.write(ids.tobytes())
                n += len(ids)
                bar.update(len(ids))
        if n == 0:
            raise HarnessError(f"corpus {corpus} is empty")
        tmp = out.with_name(out.name + ".tmp.npy")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int32, shape=(n,))
        source = np.memmap(raw, dtype=np.int32, mode="r")
        for lo in range(0, n, 1 << 26):
            array[lo:lo + (1 << 26)] = source[lo:lo + (1 << 26)]
        array.flush()
        del array, source
        tmp.replace(out)
    finally:
        raw.unlink(missing_ok=True)
    return n


def load_tokens(path: Path) -> np.ndarray:
    """The token stream `write_tokens` wrote, memory-mapped; a missing, truncated or foreign file is
    a one-line error naming it (numpy's own is a traceback about mmap lengths)."""
    from harness.io import reading

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing token file {path}")
    with reading(path, "token file"):
        tokens = np.load(path, mmap_mode="r")
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise HarnessError(f"token file {path} holds a {tokens.dtype} array of shape {tokens.shape}, not token ids")
    return tokens


def equal_share_windows(streams: list[list[int]], seq_len: int, max_windows: int) -> list[list[int]]:
    """Up to `max_windows` windows of `seq_len` tokens, an equal share from each stream (each
    task's train queries, packed): counting which experts a router picks "across diverse tasks"
    (MASA, L65) must not be one task's count because it comes first. A stream shorter than its
    share gives what it has; one shorter than a window gives none (no padding to skew counts)."""
    share = max(1, max_windows // max(1, len(streams)))
    out = []
    for stream in streams:
        out += [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)][:share]
    return out[:max_windows]


def heldout_start(n_tokens: int, seq_len: int, sequences: int) -> int:
    """Where the held-out tail of a stream of `n_tokens` starts: its last `sequences` whole
    `seq_len` windows (what `PretrainBatches(..., heldout=sequences)` never trains on)."""
    return max(0, n_tokens // seq_len - sequences) * seq_len


@dataclass
class PretrainBatches:
    """Non-overlapping `seq_len` windows of the token stream, reshuffled every epoch.

    The budget counts whole sequences: `budget // seq_len` of them, in batches of
    `batch_size`; the last batch may be smaller, so exactly that many tokens are trained.
    The last `heldout` windows of the stream are never trained on (`heldout_batches`):
    the fixed held-out set whose LM loss pre-training logs (data efficiency). `horizon` (tokens,
    at least the budget) is the run the learning-rate schedule spans: a budget trained with a
    larger run's horizon is that run's checkpoint at the budget, batch for batch (the windows'
    order does not depend on the budget).
    """

    tokens: np.ndarray
    seq_len: int
    batch_size: int
    budget: int
    seed: int
    heldout: int = 0
    horizon: int | None = None

    def __post_init__(self):
        total_windows = len(self.tokens) // self.seq_len
        self.n_windows = total_windows - self.heldout
        if self.n_windows <= 0:
            raise HarnessError(f"corpus has {len(self.tokens)} tokens: {total_windows} sequences of {self.seq_len}, "
                               f"none left to train on after {self.heldout} held out")
        self.n_sequences = self.budget // self.seq_len
        if self.n_sequences < self.batch_size:
            raise HarnessError(f"token budget {self.budget} is smaller than one batch "
                               f"({self.batch_size} x {self.seq_len} = {self.batch_size * self.seq_len} tokens)")
        self._perms: dict[int, np.ndarray] = {}

    @property
    def steps(self) -> int:
        return -(-self.n_sequences // self.batch_size)

    @property
    def schedule_steps(self) -> int:
        """The steps the learning-rate schedule spans: the horizon's, or the budget's own."""
        if self.horizon is None:
            return self.steps
        if self.horizon < self.budget:
            raise HarnessError(f"schedule horizon {self.horizon} tokens is shorter than the budget {self.budget}")
        return -(-(self.horizon // self.seq_len) // self.batch_size)

    @property
    def tokens_seen(self) -> int:
        return self.n_sequences * self.seq_len

    def _window(self, k: int) -> int:
        epoch, i = divmod(k, self.n_windows)
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)}
        return int(self._perms[epoch][i])

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        lo, hi = step * self.batch_size, min((step + 1) * self.batch_size, self.n_sequences)
        rows = [self.tokens[w * self.seq_len:(w + 1) * self.seq_len] for w in map(self._window, range(lo, hi))]
        ids = torch.from_numpy(np.stack(rows).astype(np.int64))  # (B, T)
        return {"input_ids": ids, "labels": ids}

    def heldout_batches(self) -> list[torch.Tensor]:
        """The held-out windows (the stream's last `heldout`), `batch_size` rows at a time."""
        lo = heldout_start(len(self.tokens), self.seq_len, self.heldout)
        held = np.asarray(self.tokens[lo:lo + self.heldout * self.seq_len]).astype(np.int64)
        ids = torch.from_numpy(held.reshape(self.heldout, self.seq_len))  # (H, T)
        return list(ids.split(self.batch_size))


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, batches: list[torch.Tensor]) -> float:
    """Mean next-token cross-entropy over every predicted position of the held-out windows
    (each window predicts its own T - 1 tokens, so batches of any size weigh tokens equally)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for ids in batches:
        ids = ids.to(device)
        logits = model(input_ids=ids).logits[:, :-1].float()  # (B, T-1, V)
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                         ids[:, 1:].reshape(-1), reduction="sum"))
        count += ids[:, 1:].numel()
    return total / count


def encode_pair(tokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt and response, split the way lm-eval splits a (context,
    continuation) pair: encode the whole and cut at the prompt's length, with any
    trailing space of the prompt moved to the response."""
    n_space = len(prompt) - len(prompt.rstrip(" "))
    if n_space:
        prompt, response = prompt[:-n_space], prompt[-n_space:] + response
    whole = tokenizer(prompt + response, add_special_tokens=False)["input_ids"]
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return whole[:n_prompt], whole[n_prompt:]


def sft_pairs(tokenizer, records: list[dict]) -> list[tuple[list[int], list[int]]]:
    """(prompt, answer + EOS) token ids of task records, as SFT trains on them."""
    from harness.data.tasks import sft_pair

    return [(p, a + [tokenizer.eos_token_id]) for p, a in (encode_pair(tokenizer, *sft_pair(r)) for r in records)]


@dataclass
class SFTBatches:
    """(prompt, response) pairs, loss on the response only, right-padded batches,
    reshuffled every epoch; prompts are cut from the left to fit `max_len`."""

    pairs: list[tuple[list[int], list[int]]]
    batch_size: int
    epochs: int
    seed: int
    pad_id: int
    max_len: int

    def __post_init__(self):
        if not self.pairs:
            raise HarnessError("SFT set is empty")
        self.per_epoch = -(-len(self.pairs) // self.batch_size)

    @property
    def steps(self) -> int:
        return self.per_epoch * self.epochs

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        epoch, i = divmod(step, self.per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.pairs))
        chosen = [self.pairs[j] for j in order[i * self.batch_size:(i + 1) * self.batch_size]]
        return collate(chosen, self.pad_id, self.max_len)


def collate(pairs: list[tuple[list[int], list[int]]], pad_id: int, max_len: int) -> dict[str, torch.Tensor]:
    """Right-padded batch of (prompt, response) id pairs, labels on the response only; a pair
    longer than `max_len` loses the start of its prompt (then of its response's end)."""
    seqs, labels = [], []
    for prompt, response in pairs:
        response = response[:max_len]
        prompt = prompt[max(0, len(prompt) + len(response) - max_len):]
        seqs.append(prompt + response)
        labels.append([IGNORE] * len(prompt) + response)
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id)
    lab = torch.full((len(seqs), width), IGNORE)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, (s, l) in enumerate(zip(seqs, labels)):
        ids[r, :len(s)], lab[r, :len(l)], mask[r, :len(s)] = torch.tensor(s), torch.tensor(l), 1
    return {"input_ids": ids, "labels": lab, "attention_mask": mask}
