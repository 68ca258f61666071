"""`python -m harness fetch-corpus`: RedPajama's files, downloaded into exactly the folder a
profile's `corpus: {kind: local, path: ...}` reads.

- `1t` (the paper profile's reading): the release's `urls.txt` lists every file; each lands at
  its path under the release root, `<out>/<subset>/...` (arxiv, book, c4, common_crawl, github,
  stackexchange, wikipedia), the layout `domains: folder` reads as Figure 4's domains.
  CommonCrawl's shards are `.jsonl.zst`, the others `.jsonl`; the corpus stage reads both.
- `v2` (L121's name for it): a listing of document ids (`listings/<lang>-<snapshot>-<partition>.txt`)
  whose files are `documents/<id>.json.gz`, JSON lines with the text in `raw_content`.

Files already present are skipped, so an interrupted fetch resumes; each file is written to a
`.part` sibling and renamed, so a half-downloaded file is never read as a shard. Paths come from
a listing fetched over the network: each must be a plain relative path (no `..`, no odd characters)
or the fetch stops before writing anything.
"""

from __future__ import annotations

import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError, first_line

RELEASES = {
    "1t": {"base": "https://data.together.xyz/redpajama-data-1T/v1.0.0", "listing": "urls.txt"},
    "v2": {"base": "https://data.together.xyz/redpajama-data-v2/v1.0.0", "listing": "listings/en-2023-06-head_middle.txt"},
}
# RedPajama-1T's tokens per subset, in billions (its release notes; LLaMA-1's mixture): the shares
# the paper profile's `corpus.quota` pins and the toy's stand-in shards follow
REDPAJAMA_1T_TOKENS = {"common_crawl": 878, "c4": 175, "github": 59, "book": 26, "arxiv": 28, "wikipedia": 24,
                       "stackexchange": 20}
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class File:
    url: str
    path: PurePosixPath  # relative to the output folder

    @property
    def subset(self) -> str:
        return self.path.parts[0]


def _relative(path: str, listing: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if not rel.parts or not all(_PART.fullmatch(part) for part in rel.parts):
        raise HarnessError(f"fetch-corpus: {listing} names {path!r}, which is not a plain relative path")
    return rel


def files(release: str, listing_text: str, base: str, listing: str) -> list[File]:
    """The files a release's listing names, each with its URL and its path under the output."""
    lines = [line.strip() for line in listing_text.splitlines() if line.strip() and not line.startswith("#")]
    if release == "1t":  # full URLs; the path is what follows the release root, fetched from `base`
        marker = "/v1.0.0/"
        out = []
        for url in lines:
            if marker not in url:
                raise HarnessError(f"fetch-corpus: {listing}: {url!r} is not under a RedPajama-1T release root")
            rel = _relative(url.split(marker, 1)[1], listing)
            out.append(File(f"{base}/{rel}", rel))
        return out
    return [File(f"{base}/documents/{doc}.json.gz", _relative(f"documents/{doc}.json.gz", listing)) for doc in lines]


def _read(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (OSError, ValueError) as e:  # URLError is an OSError; a malformed URL a ValueError
        raise HarnessError(f"fetch-corpus: cannot read {url} ({first_line(e)})") from None


def _download(url: str, dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
    except (OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        raise HarnessError(f"fetch-corpus: cannot download {url} ({first_line(e)}); run again to resume") from None
    part.replace(dest)


def fetch(release: str, out: Path, subsets: list[str] | None = None, max_files: int | None = None,
          base: str | None = None, listing: str | None = None) -> list[Path]:
    """Download `release`'s files (those of `subsets`, at most `max_files` of each) under `out`;
    returns the files now present. `base` and `listing` override the release's URLs (a mirror)."""
    from tqdm import tqdm

    spec = RELEASES[release]
    base = (base or spec["base"]).rstrip("/")
    listing = listing or f"{base}/{spec['listing']}"
    chosen = files(release, _read(listing).decode("utf-8"), base, listing)
    if subsets:
        found = {f.subset for f in chosen}
        missing = sorted(set(subsets) - found)
        if missing:
            raise HarnessError(f"fetch-corpus: {listing} lists no subset {', '.join(missing)} "
                               f"(it has {', '.join(sorted(found))})")
        chosen = [f for f in chosen if f.subset in subsets]
    if max_files:  # the first `max_files` of each subset, in the listing's order
        seen: dict[str, int] = {}
        kept = []
        for f in chosen:
            seen[f.subset] = seen.get(f.subset, 0) + 1
            if seen[f.subset] <= max_files:
                kept.append(f)
        chosen = kept
    for f in tqdm(chosen, desc=f"fetch RedPajama-{release.upper()}", unit="file"):
        dest = out / f.path
        if not dest.is_file():
            _download(f.url, dest)
    return [out / f.path for f in chosen]
