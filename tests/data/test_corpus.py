"""The pre-training corpus streamed from local shards (.txt, .jsonl, .parquet) and tokenised a
chunk at a time, against the whole-text computation it replaces."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.data.corpus import corpus
from harness.data.batches import iter_documents, tokenize_corpus, write_tokens
from harness.errors import HarnessError
from harness.data.tokenizer import load_tokenizer


def reference_documents(text: str) -> list[str]:
    return [d for d in text.split("\n\n") if d.strip()]


@pytest.mark.parametrize("seed", range(5))
def test_documents_read_in_chunks_equal_splitting_the_whole_text(tmp_path, seed):
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(["a", "b c", " ", "\n", "\n\n", "\n\n\n"], size=400))
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    for chunk in (1, 2, 3, 7, 1 << 20):  # separators straddle every chunk boundary at size 1
        assert list(iter_documents(path, chunk_chars=chunk)) == reference_documents(text), chunk


def test_streamed_token_file_equals_tokenising_the_whole_corpus(tmp_path, world_dir, tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    text = (world_dir / "corpus.txt").read_text()
    docs = reference_documents(text)
    expected = [t for ids in tok(docs, add_special_tokens=False)["input_ids"] for t in (*ids, tok.eos_token_id)]
    out = tmp_path / "tokens.npy"
    n = write_tokens(world_dir / "corpus.txt", tok, out, docs_per_call=7)
    ids = np.load(out)
    assert ids.dtype == np.int32 and n == len(ids) == len(expected)
    assert ids.tolist() == expected
    assert tokenize_corpus(world_dir / "corpus.txt", tok, docs_per_call=5).tolist() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.npy"]  # no temporary file left


def test_an_empty_corpus_leaves_no_token_file(tmp_path, tokenizer_dir):
    (tmp_path / "corpus.txt").write_text("\n\n \n\n")
    with pytest.raises(HarnessError, match="is empty"):
        write_tokens(tmp_path / "corpus.txt", load_tokenizer(tokenizer_dir), tmp_path / "tokens.npy")
    assert list(tmp_path.iterdir()) == [tmp_path / "corpus.txt"]


def corpus_cfg(path, **extra):
    return {"corpus": {"kind": "local", "path": str(path), "text_field": "raw_content", **extra}}


def test_local_shards_of_every_kind_become_one_corpus_in_file_order(tmp_path):
    shards = tmp_path / "shards"
    (shards / "b").mkdir(parents=True)
    (shards / "a.jsonl").write_text(json.dumps({"raw_content": "first\n\n\ndoc"}) + "\n\n"
                                    + json.dumps({"raw_content": "second"}) + "\n")
    pq.write_table(pa.table({"raw_content": ["third", "fourth"], "meta": [1, 2]}), shards / "b" / "c.parquet")
    (shards / "b" / "d.txt").write_text("fifth\n \nsixth\n")
    (shards / "notes.md").write_text("not a shard")
    corpus(corpus_cfg(shards, max_documents=5), tmp_path / "corpus")
    docs = list(iter_documents(tmp_path / "corpus" / "corpus.txt"))
    assert docs == ["first\ndoc", "second", "third", "fourth", "fifth"]  # blank lines in a doc folded
    assert json.loads((tmp_path / "corpus" / "run.json").read_text())["documents"] == 5


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_a_shard_without_the_text_field_is_one_line(tmp_path, kind):
    shard = tmp_path / f"shard.{kind}"
    if kind == "jsonl":
        shard.write_text(json.dumps({"text": "x"}) + "\n")
    else:
        pq.write_table(pa.table({"text": ["x"]}), shard)
    with pytest.raises(HarnessError, match="no (field|column) 'raw_content'.*set corpus.text_field"):
        corpus(corpus_cfg(shard), tmp_path / "corpus")
    assert not (tmp_path / "corpus").exists()


def redpajama_1t(root):
    """RedPajama-1T's download layout: one folder per subset, jsonl records with `meta`
    (Wikipedia's naming its language)."""
    docs = {"arxiv": [{"text": f"arxiv {i}", "meta": {"arxiv_id": str(i)}} for i in range(3)],
            "github": [{"text": f"github {i}", "meta": {"repo": "r"}} for i in range(2)],
            "wikipedia": [{"text": "wiki en 0", "meta": {"language": "en"}},
                          {"text": "wiki de", "meta": {"language": "de"}},
                          {"text": "wiki en 1", "meta": {"language": "en"}}],
            "book": [{"text": "a book", "meta": {}}]}
    for subset, rows in docs.items():
        (root / subset).mkdir(parents=True)
        (root / subset / f"{subset}_00.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_redpajama_subsets_are_read_in_turn_with_their_domains_alone(tmp_path):
    """Issue 18 items 3-4: RedPajama-1T's folders, English only, become one corpus whose every
    prefix holds each subset, and each subset's documents alone are Figure 4's domains."""
    root = redpajama_1t(tmp_path / "rp")
    cfg = {"corpus": {"kind": "local", "path": str(root), "domains": "folder", "subsets": ["arxiv", "github", "wikipedia"],
                      "languages": {"field": "meta.language", "keep": ["en"]}}}
    corpus(cfg, tmp_path / "corpus")
    docs = list(iter_documents(tmp_path / "corpus" / "corpus.txt"))
    assert docs == ["arxiv 0", "github 0", "wiki en 0", "arxiv 1", "github 1", "arxiv 2", "wiki en 1"]
    domains = {p.stem: list(iter_documents(p)) for p in (tmp_path / "corpus" / "domains").iterdir()}
    assert domains == {"arxiv": ["arxiv 0", "arxiv 1", "arxiv 2"], "github": ["github 0", "github 1"],
                       "wikipedia": ["wiki en 0", "wiki en 1"]}  # no book (not a named subset), no German
    assert json.loads((tmp_path / "corpus" / "run.json").read_text())["domains"] == {
        "arxiv": 3, "github": 2, "wikipedia": 2}
    # a prefix (max_documents) is still every subset
    corpus({"corpus": {**cfg["corpus"], "max_documents": 3}}, tmp_path / "prefix")
    assert sorted(p.stem for p in (tmp_path / "prefix" / "domains").iterdir()) == ["arxiv", "github", "wikipedia"]


def test_domains_from_a_record_field(tmp_path):
    shard = tmp_path / "hf.jsonl"  # the hub script's output names the subset in each record
    shard.write_text("".join(json.dumps({"text": t, "red_pajama_subset": s}) + "\n"
                             for t, s in [("a", "arxiv"), ("b", "github"), ("c", "arxiv")]))
    corpus({"corpus": {"kind": "local", "path": str(shard), "domains": "red_pajama_subset"}}, tmp_path / "corpus")
    assert list(iter_documents(tmp_path / "corpus" / "domains" / "arxiv.txt")) == ["a", "c"]
    shard.write_text(json.dumps({"text": "x", "red_pajama_subset": "../escape"}) + "\n")
    with pytest.raises(HarnessError, match=r"domain '\.\./escape' cannot name a file"):
        corpus({"corpus": {"kind": "local", "path": str(shard), "domains": "red_pajama_subset"}}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "escape.txt").exists()


def test_a_missing_subset_and_a_script_dataset_are_one_line(tmp_path):
    root = redpajama_1t(tmp_path / "rp")
    with pytest.raises(HarnessError, match="no subset folder c4 under .*it has arxiv, book, github, wikipedia"):
        corpus({"corpus": {"kind": "local", "path": str(root), "domains": "folder", "subsets": ["c4", "arxiv"]}},
               tmp_path / "corpus")
    script = tmp_path / "RedPajama-Data-V2"  # a loading-script dataset, as the hub's RedPajama sets are
    script.mkdir()
    (script / "RedPajama-Data-V2.py").write_text("import datasets\n")
    with pytest.raises(HarnessError, match="is built by a loading script, which datasets .* no longer runs") as e:
        corpus({"corpus": {"kind": "hub", "dataset": str(script)}}, tmp_path / "corpus")
    assert "\n" not in str(e.value)


def test_compressed_shards_read_as_their_releases_ship_them(tmp_path):
    """RedPajama-1T's CommonCrawl `.jsonl.zst`, RedPajama-V2's `.json.gz` JSON lines with
    `raw_content`, a gzipped text file: the same documents as the plain files would give."""
    import gzip

    import zstandard

    shards = tmp_path / "shards"
    shards.mkdir()
    lines = lambda *docs: "".join(json.dumps({"raw_content": d}) + "\n" for d in docs).encode()  # noqa: E731
    (shards / "a_en_head_0000.json.gz.dedup.classifier.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(lines("cc one", "cc two")))
    (shards / "b_en_head.json.gz").write_bytes(gzip.compress(lines("v2 one")))
    (shards / "c.txt.gz").write_bytes(gzip.compress(b"text one\n\ntext two\n"))
    (shards / "d.parquet.gz").write_bytes(b"not read: a parquet file is never compressed outside")
    corpus(corpus_cfg(shards), tmp_path / "corpus")
    assert list(iter_documents(tmp_path / "corpus" / "corpus.txt")) == [
        "cc one", "cc two", "v2 one", "text one", "text two"]


def test_a_corrupt_compressed_shard_is_one_line_naming_it(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "x.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd not a zstd frame")
    with pytest.raises(HarnessError, match=r"corpus: .*x\.jsonl\.zst cannot be read \(ZstdError"):
        corpus(corpus_cfg(shards), tmp_path / "corpus")
    assert not (tmp_path / "corpus").exists()


def test_a_quota_takes_exactly_each_domains_tokens_interleaved(tmp_path, tokenizer_dir):
    """`corpus.quota`: exactly so many tokens of each domain, always from the one furthest behind
    its share (so a prefix of the stream holds the mixture); a domain short of its quota is one line."""
    tok = load_tokenizer(tokenizer_dir)
    domains = tmp_path / "corpus" / "domains"
    domains.mkdir(parents=True)
    text = {"a": [f"alpha document number {i} about the river" for i in range(40)],
            "b": [f"beta document {i} on the mountain and its trees" for i in range(40)]}
    for name, docs in text.items():
        (domains / f"{name}.txt").write_text("".join(d + "\n\n" for d in docs))
    (tmp_path / "corpus" / "corpus.txt").write_text("unused\n\n")
    quota = {"a": 50, "b": 150}
    n = write_tokens(tmp_path / "corpus" / "corpus.txt", tok, tmp_path / "tokens.npy", docs_per_call=1, quota=quota)
    ids = np.load(tmp_path / "tokens.npy").tolist()
    assert n == len(ids) == 200
    per_domain = {name: [t for d in tok(docs, add_special_tokens=False)["input_ids"] for t in (*d, tok.eos_token_id)]
                  for name, docs in text.items()}
    first_doc_a = len(tok(text["a"][0], add_special_tokens=False)["input_ids"]) + 1
    assert ids[:first_doc_a] == per_domain["a"][:first_doc_a]  # both at 0 of their share: the first named
    taken = {"a": [], "b": []}
    # each token belongs to one domain's stream, in order: split the stream back by matching prefixes
    pos = {"a": 0, "b": 0}
    i = 0
    while i < len(ids):
        for name in ("a", "b"):
            stream = per_domain[name]
            if pos[name] < quota[name] and ids[i] == stream[pos[name]]:
                taken[name].append(ids[i])
                pos[name] += 1
                break
        else:
            raise AssertionError(f"token {i} is neither domain's next")
        i += 1
    assert taken == {name: per_domain[name][:quota[name]] for name in quota}
    with pytest.raises(HarnessError, match=r"corpus quota: 'a' holds [\d,]+ tokens, fewer than its quota of 100,000"):
        write_tokens(tmp_path / "corpus" / "corpus.txt", tok, tmp_path / "short.npy", quota={"a": 100_000})
    assert not list(tmp_path.glob("short*"))


def test_fetch_corpus_writes_the_folder_the_paper_profile_reads_and_resumes(tmp_path):
    """`python -m harness fetch-corpus` from a file:// mirror of RedPajama-1T: each file lands at
    <out>/<subset>/..., the corpus stage reads the result (CommonCrawl's .jsonl.zst included), a
    second run downloads nothing, and a listing naming `..` stops before writing anything."""
    import zstandard

    from harness.data.fetch import fetch

    root = tmp_path / "mirror" / "redpajama-data-1T" / "v1.0.0"
    shards = {"arxiv/arxiv_0.jsonl": b'{"text": "an arxiv paper"}\n',
              "arxiv/arxiv_1.jsonl": b'{"text": "another paper"}\n',
              "common_crawl/2019-30/en_head_0000.json.gz.dedup.classifier.jsonl.zst":
                  zstandard.ZstdCompressor().compress(b'{"text": "a web page"}\n'),
              "github/github_0.jsonl": b'{"text": "def f(): pass"}\n'}
    for rel, data in shards.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "urls.txt").write_text("".join(f"https://data.together.xyz/redpajama-data-1T/v1.0.0/{rel}\n"
                                           for rel in shards))
    out = tmp_path / "data" / "redpajama-1t"
    got = fetch("1t", out, subsets=["arxiv", "common_crawl"], max_files=1, base=root.as_uri(),
                listing=(root / "urls.txt").as_uri())
    # the listing's URLs name the real host; a mirror serves the same paths under --base-url
    assert sorted(p.relative_to(out).as_posix() for p in got) == [
        "arxiv/arxiv_0.jsonl", "common_crawl/2019-30/en_head_0000.json.gz.dedup.classifier.jsonl.zst"]
    corpus({"corpus": {"kind": "local", "path": str(out), "domains": "folder"}}, tmp_path / "corpus")
    assert list(iter_documents(tmp_path / "corpus" / "corpus.txt")) == ["an arxiv paper", "a web page"]
    (out / "arxiv/arxiv_0.jsonl").write_text('{"text": "kept"}\n')  # present: not fetched again
    fetch("1t", out, subsets=["arxiv"], max_files=1, base=root.as_uri(), listing=(root / "urls.txt").as_uri())
    assert (out / "arxiv/arxiv_0.jsonl").read_text() == '{"text": "kept"}\n'

    (root / "bad.txt").write_text("https://data.together.xyz/redpajama-data-1T/v1.0.0/../../etc/passwd\n")
    with pytest.raises(HarnessError, match="not a plain relative path"):
        fetch("1t", tmp_path / "bad", base=root.as_uri(), listing=(root / "bad.txt").as_uri())
    assert not (tmp_path / "bad").exists()
