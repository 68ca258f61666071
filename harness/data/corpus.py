"""Pre-training text for profiles that do not generate their own (paper, micro-real): local
.txt/.jsonl/.json/.parquet files (the text ones also .gz/.bz2/.xz/.zst-compressed, as releases
ship them: RedPajama-1T's CommonCrawl shards are `.jsonl.zst`, RedPajama-V2's documents
`.json.gz` JSON lines) or a streamed hub dataset, written as one corpus.txt of documents
separated by blank lines (what the tokenizer and token stages read).

A corpus may carry domains (Figure 4 aligns MASA on one domain at a time): `domains: folder`
names each document by the top folder under `path` it sits in (RedPajama-1T's download keeps
one folder per subset: arxiv/, github/, wikipedia/, ...), `domains: <field>` by a record field
(dotted for nested ones, e.g. `meta.source`). Each domain's documents are also written alone to
`domains/<name>.txt`. With `domains: folder` the folders are read in turn, one document each,
so that any prefix of the corpus (`max_documents`) holds every domain. `subsets: [..]` keeps
only those top folders, and `languages: {field, keep}` drops documents whose field names
another language (RedPajama-1T's Wikipedia has 20; documents without the field are kept).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Iterator

from harness.errors import HarnessError, first_line
from harness.io import COMPRESSED, atomic_dir, open_text, write_run_record

# `.json` is read as JSON lines: RedPajama-V2's document shards are named `.json.gz` and hold one
# document a line
CORPUS_FILES = (".txt", ".jsonl", ".json", ".parquet")
DOMAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a domain name becomes a file name
SCRIPT_DATASET = "Dataset scripts are no longer supported"


def kind(path: Path) -> str | None:
    """The format of a corpus file, its compression aside (".jsonl" for `x.jsonl.zst`), or None."""
    base = path.with_suffix("") if path.suffix in COMPRESSED else path
    found = base.suffix if base.suffix in CORPUS_FILES else None
    return None if found == ".parquet" and base is not path else found


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise HarnessError(f"corpus: no file or folder {path}")
    found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and kind(p))
    if not found:
        raise HarnessError(f"corpus: no {', '.join(CORPUS_FILES)} files (plain or {', '.join(COMPRESSED)}) "
                           f"under {path}")
    return found


def _records(f: Path, text_field: str) -> Iterator[dict]:
    """The records of one shard, read lazily: .txt documents (blank-line separated) as
    {text_field: doc}, JSON lines and .parquet rows as they are; a corrupt compressed shard is one
    line naming it."""
    try:
        yield from _shard_records(f, text_field)
    except HarnessError:
        raise
    except Exception as e:  # noqa: BLE001 - gzip, lzma, zstandard and pyarrow each raise their own kind
        raise HarnessError(f"corpus: {f} cannot be read ({type(e).__name__}: {first_line(e)})") from None


def _shard_records(f: Path, text_field: str) -> Iterator[dict]:
    if kind(f) == ".txt":
        with open_text(f) as handle:
            text = handle.read()
        # a line of only whitespace separates documents too (WikiText's blank lines hold a space)
        yield from ({text_field: d} for d in re.split(r"\n[ \t]*\n", text) if d.strip())
    elif kind(f) == ".parquet":
        import pyarrow.parquet as pq

        shard = pq.ParquetFile(f)
        if text_field not in shard.schema_arrow.names:
            raise HarnessError(f"corpus: {f} has no column {text_field!r} (it has "
                               f"{', '.join(shard.schema_arrow.names)}); set corpus.text_field")
        for batch in shard.iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    else:
        with open_text(f) as lines:
            for n, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        raise HarnessError(f"corpus: {f} line {n} is not JSON ({e.msg})") from None


def _field(row: dict, field: str, where: str, required: bool = True):
    """`row[field]`, following dots into nested records; None if absent and not required."""
    value = row
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            if not required:
                return None
            keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise HarnessError(f"corpus: {where} has no field {field!r} (it has {keys}); set corpus.text_field "
                               f"or corpus.domains")
        value = value[part]
    return value


def _domain_name(value, where: str) -> str:
    name = str(value)
    if not DOMAIN_NAME.fullmatch(name):
        raise HarnessError(f"corpus: {where}: domain {name!r} cannot name a file (letters, digits, _ . - only)")
    return name


def _local_documents(cc: dict) -> Iterator[tuple[str, str | None, dict, str]]:
    """(text, domain, record, where) of the local shards: file by file in sorted order, or with
    `domains: folder` one document from each top folder in turn."""
    field, domains = cc.get("text_field", "text"), cc.get("domains")
    roots = [Path(p) for p in (cc["path"] if isinstance(cc["path"], list) else [cc["path"]])]

    def read(files: list[Path], folder: str | None = None):
        for f in files:
            for n, row in enumerate(_records(f, field), 1):
                where = f"{f} record {n}"
                if domains in (None, "folder"):
                    domain = folder
                else:
                    domain = _domain_name(_field(row, domains, where), where)
                yield _field(row, field, where), domain, row, where

    if domains != "folder":
        return read([f for root in roots for f in _files(root)])
    folders: dict[str, list[Path]] = {}
    for root in roots:
        if not root.is_dir():
            raise HarnessError(f"corpus: `domains: folder` needs folders, and {root} is not one")
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            folders.setdefault(_domain_name(sub.name, str(sub)), []).extend(_files(sub))
    if cc.get("subsets"):
        missing = sorted(set(cc["subsets"]) - set(folders))
        if missing:
            raise HarnessError(f"corpus: no subset folder {', '.join(missing)} under {', '.join(map(str, roots))} "
                               f"(it has {', '.join(folders) or 'none'})")
        folders = {name: files for name, files in folders.items() if name in cc["subsets"]}
    if not folders:
        raise HarnessError(f"corpus: `domains: folder` found no folders under {', '.join(map(str, roots))}")
    streams = [read(files, name) for name, files in folders.items()]
    return (doc for batch in itertools.zip_longest(*streams) for doc in batch if doc is not None)


def _hub_documents(cc: dict) -> Iterator[tuple[str, str | None, dict, str]]:
    """(text, domain, record, where) of a streamed hub dataset."""
    import datasets

    try:
        stream = datasets.load_dataset(cc["dataset"], cc.get("name"), split=cc.get("split", "train"), streaming=True)
    except RuntimeError as e:
        if SCRIPT_DATASET not in str(e):
            raise
        raise HarnessError(f"corpus: the hub dataset {cc['dataset']} is built by a loading script, which datasets "
                           f"{datasets.__version__} no longer runs; download its files and read them with "
                           f"`kind: local` (docs/workflow.md, the corpus)") from None
    domains = cc.get("domains")
    for n, row in enumerate(stream, 1):
        where = f"{cc['dataset']} record {n}"
        domain = _domain_name(_field(row, domains, where), where) if domains else None
        yield _field(row, cc.get("text_field", "text"), where), domain, row, where


def _kept(cc: dict):
    """The language filter: keep a document unless its `languages.field` names another language."""
    rule = cc.get("languages")
    if not rule:
        return lambda row, where: True
    keep = set(rule["keep"])

    def kept(row, where):
        value = _field(row, rule["field"], where, required=False)
        return value is None or value in keep

    return kept


def corpus(cfg: dict, out: Path) -> None:
    """Pre-training text from local .txt/.jsonl/.parquet files (`path`) or a streamed hub dataset,
    one document after another, never all in memory; each domain's documents also alone."""
    from tqdm import tqdm

    cc = cfg["corpus"]
    if cc["kind"] == "local":
        docs = _local_documents(cc)
    elif cc["kind"] == "hub":
        docs = _hub_documents(cc)
    else:
        raise HarnessError(f"corpus kind {cc['kind']!r} is produced by the `world` stage")
    kept = _kept(cc)
    docs = itertools.islice(((text, domain) for text, domain, row, where in docs if kept(row, where)),
                            cc.get("max_documents"))
    with atomic_dir(out) as tmp:
        counts: dict[str, int] = {}
        files = {}
        n = 0
        try:
            with (tmp / "corpus.txt").open("w", encoding="utf-8") as f:
                for text, domain in tqdm(docs, desc="corpus", unit="doc", unit_scale=True, mininterval=5.0):
                    # a blank line separates documents, so blank lines inside one are folded
                    doc = "\n".join(l for l in str(text).splitlines() if l.strip()) + "\n\n"
                    f.write(doc)
                    n += 1
                    if domain is not None:
                        if domain not in files:
                            (tmp / "domains").mkdir(exist_ok=True)
                            files[domain] = (tmp / "domains" / f"{domain}.txt").open("w", encoding="utf-8")
                        files[domain].write(doc)
                        counts[domain] = counts.get(domain, 0) + 1
        finally:
            for handle in files.values():
                handle.close()
        if n == 0:
            raise HarnessError(f"corpus {cc.get('path') or cc.get('dataset')} holds no documents")
        write_run_record(tmp, "corpus", cfg, documents=n, domains=counts or None)
