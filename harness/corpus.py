"""Pre-training text for profiles that do not generate their own (paper, micro-real): local
.txt/.jsonl/.parquet files or a streamed hub dataset, written as one corpus.txt of documents
separated by blank lines (what the tokenizer and token stages read)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.errors import HarnessError
from harness.io import atomic_dir, write_run_record

CORPUS_FILES = (".txt", ".jsonl", ".parquet")


def _local_documents(paths: list[Path], text_field: str):
    """Documents of .txt files (blank-line separated), .jsonl and .parquet shards (`text_field`),
    read lazily, file by file in sorted order."""
    files = []
    for path in paths:
        if not path.exists():
            raise HarnessError(f"corpus: no file or folder {path}")
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in CORPUS_FILES)
        if not found:
            raise HarnessError(f"corpus: no {', '.join(CORPUS_FILES)} files under {path}")
        files += found
    for f in files:
        if f.suffix == ".txt":
            # a line of only whitespace separates documents too (WikiText's blank lines hold a space)
            yield from (d for d in re.split(r"\n[ \t]*\n", f.read_text(encoding="utf-8")) if d.strip())
        elif f.suffix == ".parquet":
            import pyarrow.parquet as pq

            shard = pq.ParquetFile(f)
            if text_field not in shard.schema_arrow.names:
                raise HarnessError(f"corpus: {f} has no column {text_field!r} (it has "
                                   f"{', '.join(shard.schema_arrow.names)}); set corpus.text_field")
            for batch in shard.iter_batches(columns=[text_field], batch_size=1024):
                yield from batch.column(0).to_pylist()
        else:
            with f.open(encoding="utf-8") as lines:
                for n, line in enumerate(lines, 1):
                    if line.strip():
                        yield _field(json.loads(line), text_field, f"{f} line {n}")


def _field(row: dict, field: str, where: str) -> str:
    if field not in row:
        raise HarnessError(f"corpus: {where} has no field {field!r} (it has {', '.join(row)}); set corpus.text_field")
    return row[field]


def corpus(cfg: dict, out: Path) -> None:
    """Pre-training text from local .txt/.jsonl/.parquet files (`path`) or a streamed hub dataset
    (RedPajama-V2 in the paper profile), one document after another, never all in memory."""
    import itertools

    from tqdm import tqdm

    cc = cfg["corpus"]
    field = cc.get("text_field", "text")
    if cc["kind"] == "local":
        docs = _local_documents([Path(p) for p in (cc["path"] if isinstance(cc["path"], list) else [cc["path"]])],
                                field)
    elif cc["kind"] == "hub":
        import datasets

        stream = datasets.load_dataset(cc["dataset"], cc.get("name"), split=cc.get("split", "train"), streaming=True)
        docs = (_field(row, field, cc["dataset"]) for row in stream)
    else:
        raise HarnessError(f"corpus kind {cc['kind']!r} is produced by the `world` stage")
    docs = itertools.islice(docs, cc.get("max_documents"))
    with atomic_dir(out) as tmp:
        n = 0
        with (tmp / "corpus.txt").open("w", encoding="utf-8") as f:
            for doc in tqdm(docs, desc="corpus", unit="doc", unit_scale=True, mininterval=5.0):
                # a blank line separates documents, so blank lines inside one are folded
                f.write("\n".join(l for l in doc.splitlines() if l.strip()) + "\n\n")
                n += 1
        if n == 0:
            raise HarnessError(f"corpus {cc.get('path') or cc.get('dataset')} holds no documents")
        write_run_record(tmp, "corpus", cfg, documents=n)
