"""The paper profile's grid at toy size, on a CPU: `config/paper-toy.yaml` is an overlay of
`config/paper.yaml` that changes sizes and paths only, never a name, so

    python -m harness paper-toy --out .
    snakemake -j2 all --configfile config/paper.yaml config/paper-toy.yaml

runs the paper's DAG job for job (a test compares the two plans). `write(out)` builds under
`out` (the directory Snakemake runs in) what the paper profile reads from the hub and from disk,
with the real checkpoints' quirks:

- data/redpajama-1t/<subset>/...: RedPajama-1T's download layout and compression (CommonCrawl's
  shard `.jsonl.zst` under a snapshot folder, the others `.jsonl`), the micro world's text dealt
  to its seven subsets in the release's token shares (so that the paper's `corpus.quota`, scaled
  in paper-toy.yaml, is met); Wikipedia's records name their language, some not English;
- data/minillm/...: the paper's generation files (MiniLLM's format), the micro world's instructions;
- toy/tasks/<task>/{train,test}.jsonl: each multiple-choice task in its released file format;
- toy/olmo, toy/olmoe: OLMo and OLMoE stand-ins whose embeddings have more rows than their
  tokenizer has tokens (OLMo-7B-hf: 50,304 rows for 50,280 tokens);
- toy/deepseek: a DeepSeekMoE stand-in in DeepSeekMoE's own checkpoint layout (model_type
  "deepseek", no model class in transformers; a dense first layer), with its own tokenizer and
  vocabulary, as DeepSeekMoE-16B has.
The stand-ins are untrained: the toy checks that everything runs, not what it measures.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from harness.io import atomic_dir

SEED = 0
WORLD_SIZE = {"regions": 24, "activities": 16, "tools": 16, "species": 16, "cases": 20, "diseases": 16}
SUBSETS = ("arxiv", "book", "c4", "common_crawl", "github", "stackexchange", "wikipedia")
PADDING = 24  # embedding rows past the tokenizer, as OLMo-7B-hf's 50,304 for 50,280 tokens
VOCAB = {"olmo": 384, "deepseek": 448}  # two tokenizers, two vocabularies
MAX_POSITIONS = 128
SOURCES = {  # the paper's three architectures, tiny
    "olmo": {"arch": "olmo", "layers": 2, "hidden": 32, "ffn": 64, "heads": 2},
    "olmoe": {"arch": "olmoe", "layers": 2, "hidden": 32, "ffn": 32, "heads": 2, "experts": 4, "top_k": 2},
    "deepseek": {"arch": "deepseek", "layers": 3, "hidden": 32, "ffn": 16, "heads": 2, "experts": 4, "top_k": 2,
                 "shared_experts": 2, "dense_layers": 1},
}
# where the paper profile's generation_tasks read their files (config/paper.yaml)
GENERATION_FILES = {"sinst": "sinst/11_/valid.jsonl", "uinst": "uinst/11_/valid.jsonl",
                    "self_inst": "self-inst/valid.jsonl", "vicuna": "vicuna/valid.jsonl"}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# where each subset's shard goes: CommonCrawl's as the release names it (a snapshot folder, zstd)
SHARDS = {**{s: f"{s}/{s}_00.jsonl" for s in SUBSETS},
          "common_crawl": "common_crawl/2019-30/en_head_0000.json.gz.dedup.classifier.jsonl.zst"}


def _write_shard(path: Path, rows: list[dict]) -> None:
    if path.suffix != ".zst":
        return _jsonl(path, rows)
    import zstandard

    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_bytes(zstandard.ZstdCompressor().compress(text.encode("utf-8")))


def corpus_shards(corpus: dict[str, list[str]], out: Path) -> list[str]:
    """The world's documents dealt to RedPajama-1T's subsets, each next document to the subset
    furthest behind its share of the release's tokens (`REDPAJAMA_1T_TOKENS`); every third
    Wikipedia document also comes in German, which the paper profile's language filter drops."""
    from harness.data.fetch import REDPAJAMA_1T_TOKENS

    docs = [d for group in zip(*corpus.values()) for d in group]
    by_subset: dict[str, list[dict]] = {s: [] for s in SUBSETS}
    for i, doc in enumerate(docs):
        subset = min(SUBSETS, key=lambda s: len(by_subset[s]) / REDPAJAMA_1T_TOKENS[s])
        meta = {"language": "en"} if subset == "wikipedia" else {"source": subset}
        by_subset[subset].append({"text": doc, "meta": meta})
        if subset == "wikipedia" and i % 3 == 0:
            by_subset[subset].append({"text": "Ein Artikel in deutscher Sprache.", "meta": {"language": "de"}})
    for subset, rows in by_subset.items():
        _write_shard(out / "data" / "redpajama-1t" / SHARDS[subset], rows)
    return docs


def _release(task: str, r: dict) -> dict:
    """A `{query, choices, gold}` record in `task`'s released file format (evals/formats/)."""
    q, choices, gold = r["query"], r["choices"], r["gold"]
    if task == "boolq":
        return {"passage": "From the atlas.", "question": q.rstrip("?"), "answer": choices[gold] == choices[-1]}
    if task == "piqa":
        return {"goal": q, "sol1": choices[0], "sol2": choices[1], "label": gold}
    if task == "winogrande":
        return {"sentence": f"{q} _.", "option1": choices[0], "option2": choices[1], "answer": str(gold + 1)}
    if task == "hellaswag":
        return {"activity_label": "Craft", "ctx_a": q, "ctx_b": "", "endings": choices, "label": gold}
    if task == "casehold":
        return {"context": f"{q} (<HOLDING>)", "endings": choices, "label": gold}
    if task == "medmcqa":
        return {"question": q, "choices": [f"{'ABCDE'[i]}. {c}" for i, c in enumerate(choices)], "answer": gold}
    raise ValueError(task)


def task_files(world, out: Path) -> None:
    from harness.data import world as w

    for task in w.TASKS:
        splits = w.make_task(world, task, SEED, 0.5)
        for split in ("train", "test"):
            rows = [_release(task, r) for r in splits[split]]
            if task == "boolq":  # BoolQ's choices are no / yes: the world's must be too
                assert all(r["choices"] == ["no", "yes"] for r in splits[split])
            path = out / "toy" / "tasks" / task / f"{split}.jsonl"
            if task == "piqa":  # labels in a file of their own beside the records
                _jsonl(path, [{k: v for k, v in r.items() if k != "label"} for r in rows])
                path.with_name(f"{split}-labels.lst").write_text("".join(f"{r['label']}\n" for r in rows))
            else:
                _jsonl(path, rows)


def generation_files(world, out: Path) -> None:
    """The paper's MiniLLM files: Dolly's train / dev / valid, the other sets' valid."""
    from harness.data import world as w

    root = out / "data" / "minillm"
    for task in w.GENERATION_TASKS:
        splits = w.make_task(world, task, SEED, 0.5)
        test = [{k: r[k] for k in ("instruction", "input", "output")} for r in splits["test"]]
        if task == "dolly":
            _jsonl(root / "dolly" / "train.jsonl", [{k: r[k] for k in ("instruction", "input", "output")}
                                                    for r in splits["train"]])
            _jsonl(root / "dolly" / "dev.jsonl", test[: len(test) // 2])
            _jsonl(root / "dolly" / "valid.jsonl", test[len(test) // 2:])
        else:
            _jsonl(root / GENERATION_FILES[task], test)


def _stand_in(name: str, tok, out: Path, vocab_size: int) -> None:
    from harness.models.archs import deepseek_checkpoint
    from harness.models.build import build_model, source_config
    from harness.data.tokenizer import special_ids

    model = build_model(source_config(name, SOURCES[name], vocab_size, MAX_POSITIONS, special_ids(tok)), SEED)
    if SOURCES[name]["arch"] == "deepseek":
        deepseek_checkpoint.save(model, out)
        tok.save_pretrained(out)
        return
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)


def write(out: Path) -> None:
    from harness.data import world as w
    from harness.data.tokenizer import train_tokenizer

    out = Path(out)
    world = w.make_world(SEED, WORLD_SIZE)
    docs = corpus_shards(w.make_corpus(world, SEED, repeats=2), out)
    task_files(world, out)
    generation_files(world, out)
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "corpus.txt"
        text.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
        toks = {name: train_tokenizer(text, size) for name, size in VOCAB.items()}
    for name in SOURCES:
        tok = toks["deepseek" if name == "deepseek" else "olmo"]
        _stand_in(name, tok, out / "toy" / name, len(tok) + PADDING)
    print(f"paper-toy: stand-ins, corpus shards and task files written under {out.resolve()}")
