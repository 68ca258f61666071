"""Generation tasks scored by Rouge-L, MiniLLM's protocol (LMOps `minillm/evaluate_main.py`).

Defaults as MiniLLM's eval scripts: the Alpaca prompt (the record's `prompt`),
cut to its last `max_prompt_tokens` = 256 tokens (the end holds "### Response:",
which the model must see), up to `max_new_tokens` = 256 new tokens, sampling at
temperature 1.0 with top_k 0 and top_p 1.0, once per seed in (10, 20, 30, 40, 50)
and averaged; decoded without special tokens, cut at the end-of-text token,
stripped. `sample: false` decodes greedily (one pass; seeds do not matter).
Batches are left-padded and use the KV cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

import re

from evals.rouge import rouge_l
from harness.errors import HarnessError
from harness.data.tasks import item_key


@dataclass
class GenerationConfig:
    max_prompt_tokens: int = 256
    max_new_tokens: int = 256
    sample: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seeds: list[int] = field(default_factory=lambda: [10, 20, 30, 40, 50])
    batch_size: int = 16

    @classmethod
    def from_dict(cls, d: dict) -> "GenerationConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise HarnessError(f"generation: unknown setting {sorted(unknown)[0]!r}")
        return cls(**d)


@dataclass
class Generations:
    texts: list[str]
    new_tokens: int
    seconds: float


def _encode_prompts(tok, prompts: list[str], max_prompt_tokens: int) -> list[list[int]]:
    return [tok(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:] for p in prompts]


@torch.no_grad()
def generate(model, tok, prompts: list[str], cfg: GenerationConfig, seed: int, desc: str = "generate"
             ) -> Generations:
    """Continuations of `prompts`, deterministic for a fixed seed (batches in a fixed order)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and cfg.max_prompt_tokens + cfg.max_new_tokens > limit:
        raise HarnessError(f"generation: {cfg.max_prompt_tokens} prompt + {cfg.max_new_tokens} new tokens exceed "
                           f"the model's {limit} positions")
    device = next(model.parameters()).device
    model.eval()
    encoded = _encode_prompts(tok, prompts, cfg.max_prompt_tokens)
    pad, eos = tok.pad_token_id, tok.eos_token_id
    torch.manual_seed(seed)
    texts, new_tokens, t0 = [], 0, time.perf_counter()
    for lo in tqdm(range(0, len(encoded), cfg.batch_size), desc=desc, unit="batch", mininterval=2.0):
        chunk = encoded[lo:lo + cfg.batch_size]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(chunk):  # left padding: every prompt ends where generation starts
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        sampling = dict(do_sample=True, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p) \
            if cfg.sample else dict(do_sample=False)
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             max_new_tokens=cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos,
                             use_cache=True, **sampling)[:, width:].cpu()
        for row in out:
            row = row.tolist()
            n = row.index(eos) if eos in row else len(row)
            new_tokens += min(n + 1, len(row))
            texts.append(tok.decode(row[:n], skip_special_tokens=True).strip())
    return Generations(texts, new_tokens, time.perf_counter() - t0)


def _normalise(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def fact_recall(prediction: str, facts: list[str]) -> float:
    """Share (x100) of the gold `facts` that the prediction states, as whole words, case and
    punctuation aside. Unlike Rouge-L, a response that copies the task's template with another
    entity's answer earns nothing."""
    if not facts:
        raise ValueError("fact_recall needs at least one fact")
    said = _normalise(prediction)
    return 100.0 * sum(_normalise(f) in said for f in facts) / len(facts)


def evaluate_generation(model, tok, records: list[dict], cfg: GenerationConfig, desc: str = "generate") -> dict:
    """Rouge-L (x100) of the model's responses, averaged over the seeds (one pass if greedy), and
    per item (test-file order) its key, its Rouge-L per seed and their mean (`score`): `value`
    is the items' mean score. Records with `facts` (the micro world's) also get the fact recall
    of each response (`knowledge`, per item and overall: the score only knowledge earns)."""
    if not records:
        raise HarnessError("generation: no records to evaluate")
    prompts = [r["prompt"] for r in records]
    references = [r["references"] for r in records]
    seeds = cfg.seeds if cfg.sample else cfg.seeds[:1]
    with_facts = all(r.get("facts") for r in records)
    per_seed, per_item, recalls, tokens, seconds, samples = {}, [], [], 0, 0.0, None
    for seed in seeds:
        gen = generate(model, tok, prompts, cfg, seed, desc=f"{desc} seed {seed}")
        scores = [rouge_l(t, r) for t, r in zip(gen.texts, references)]
        per_item.append(scores)
        if with_facts:
            recalls.append([fact_recall(t, r["facts"]) for t, r in zip(gen.texts, records)])
        per_seed[seed] = sum(scores) / len(scores)
        tokens, seconds = tokens + gen.new_tokens, seconds + gen.seconds
        samples = samples or [{"prompt": p[-300:], "response": t, "references": r[:1]}
                              for p, t, r in zip(prompts[:3], gen.texts[:3], references[:3])]
    items = [{"key": item_key(r), "score": sum(s) / len(s), "per_seed": list(s)}
             for r, s in zip(records, zip(*per_item))]
    knowledge = {}
    if with_facts:
        for item, k in zip(items, zip(*recalls)):
            item["knowledge"] = sum(k) / len(k)
        knowledge = {"knowledge": sum(i["knowledge"] for i in items) / len(items)}
    return {"metric": "rougeL", "value": sum(per_seed.values()) / len(per_seed), **knowledge,
            "per_seed": {str(s): v for s, v in per_seed.items()}, "n": len(records), "items": items,
            "new_tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_second": round(tokens / seconds, 1) if seconds else None, "samples": samples}
