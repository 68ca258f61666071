"""Atomic outputs and the run record stored beside every artifact.

Every stage writes into a temporary sibling and renames it into place, so a
killed job never leaves a half-written output that Snakemake (or a human)
could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from harness.errors import HarnessError

RUN_RECORD = "run.json"
TRAIN_LOG = "train_log.jsonl"  # a training run's log (loss, held-out loss), beside its weights


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_orphans(path: str | Path) -> None:
    """Delete the temporary siblings of `path` that a killed writer left behind (at paper scale a
    half-written extraction is gigabytes). Safe because one job alone writes a given output:
    Snakemake never runs two jobs for the same file, so a sibling that exists before the writer
    starts belongs to a dead one."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for p in path.parent.glob(_temp_prefix(path) + "*.tmp*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _as_if_created(tmp: str | Path, directory: bool) -> None:
    """mkstemp and mkdtemp create 0600 and 0700, private to the user whatever the umask: give the
    output the mode an ordinary `open`/`mkdir` would, so a group sharing a results folder can read it."""
    os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        _as_if_created(tmp, directory=False)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_with(path: str | Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` writes a file that then replaces `path` (a library's own writer: pandas,
    matplotlib); a failure leaves `path` as it was and no temporary file. `tmp` keeps `path`'s
    suffix, which some writers read the format from."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    tmp = path.with_name(f"{_temp_prefix(path)}{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces `path` on success.

    On an exception the temporary directory is removed and `path` is left
    as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp"))
    try:
        _as_if_created(tmp, directory=True)
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def code_version() -> str:
    """`git describe` of the checkout the code runs from, or the package version."""
    from harness import __version__

    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


# The code whose edits change a job's numbers: the core's computing layers and the evaluation
# code. `workflow/` and `cli/` are left out (what they change reaches a job through its config
# slice and command, which Snakemake compares already), and so are `methods/` and `baselines/`,
# which each method's slice fingerprints on its own (`harness.api.registry.method_code`), so that
# editing one method reruns that method alone.
CORE_CODE = ("harness", "evals")
_NOT_CORE = ("harness/workflow", "harness/cli")


@functools.lru_cache(maxsize=None)
def core_code(root: Path | None = None) -> str:
    """A fingerprint of the core code (`CORE_CODE`, less `_NOT_CORE`) under `root` (this checkout).
    Part of every stage's config slice: an edit reruns the jobs it may change, and a training work
    dir started under other code is not resumed (its stamp holds the slice)."""
    import hashlib

    root = root or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for top in CORE_CODE:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if not rel.startswith(_NOT_CORE):
                digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def write_run_record(out_dir: str | Path, stage: str, cfg: dict, seed: int | None = None,
                     **extra: Any) -> None:
    """Store what produced `out_dir`: stage, resolved config, seed, code version, time."""
    record = {
        "stage": stage,
        "config": cfg,
        "seed": seed,
        "code_version": code_version(),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    atomic_write_json(Path(out_dir) / RUN_RECORD, record)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma", ".zst": "zstandard"}


def open_text(path: Path):
    """A text file, or a .gz/.bz2/.xz/.zst-compressed one (releases ship both), read as UTF-8."""
    import importlib

    codec = COMPRESSED.get(path.suffix)
    return importlib.import_module(codec).open(path, "rt", encoding="utf-8") if codec else path.open(encoding="utf-8")


def read_jsonl(path: str | Path, name: str = "file") -> list[dict]:
    """The records (JSON objects) of a JSON-lines file, plain or compressed, or of a file holding
    one JSON array of objects; a missing, empty, undecodable or malformed file is a one-line
    error naming the file as `name` (e.g. "task 'boolq': train file")."""
    from harness.errors import HarnessError, first_line

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing {name} {path}")
    try:
        with open_text(path) as f:
            text = f.read()
    except Exception as e:  # noqa: BLE001 - gzip, bz2 and lzma each raise their own kind for a corrupt file
        raise HarnessError(f"{name} {path} cannot be read as UTF-8 text ({type(e).__name__}: "
                           f"{first_line(e)})") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise HarnessError(f"{name} {path} is not a valid JSON array ({e.msg} at line {e.lineno})") from None
        if not isinstance(records, list):
            raise HarnessError(f"{name} {path} is not a JSON array of records")
        where = [f"{path} element {i}" for i in range(len(records))]
    else:
        records, where = [], []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise HarnessError(f"{name} {path}:{lineno} is not valid JSON") from None
                where.append(f"{path}:{lineno}")
    for record, at in zip(records, where):
        if not isinstance(record, dict):
            raise HarnessError(f"{name} {at} is a JSON {type(record).__name__}, not a record (an object)")
    if not records:
        raise HarnessError(f"{name} {path} is empty")
    return records


@contextlib.contextmanager
def reading(path: str | Path, what: str) -> Iterator[None]:
    """Turn a library's failure to read `path` (a truncated safetensors file, a corrupt .npy, a
    config.json cut short) into one line naming the file, instead of a traceback from deep in
    safetensors, numpy or transformers."""
    from harness.errors import HarnessError, first_line

    try:
        yield
    except HarnessError:
        raise
    except Exception as e:  # noqa: BLE001 - any library error here means the file is unreadable
        raise HarnessError(f"corrupt or unreadable {what} {path} ({type(e).__name__}: {first_line(e)}); "
                           f"delete it and rerun the stage that wrote it") from None


def fingerprint(path: str | Path) -> str:
    """A cheap identity of an input: size and modification time of a file, or of a directory's
    run record (rewritten whenever a stage rebuilds it). A rebuilt input gets a new one."""
    path = Path(path)
    target = path / RUN_RECORD if (path / RUN_RECORD).is_file() else path
    if not target.exists():
        return "missing"
    st = target.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, through libyaml where PyYAML has it: the same documents, ~8x faster
    (0.1 s of every planning run went to parsing the schema in pure Python)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_yaml(path: Path) -> dict:
    """A YAML file holding a mapping; a missing file, a syntax error or another type is one line."""
    if not path.is_file():
        raise HarnessError(f"no config file {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise HarnessError(f"{path}: YAML syntax error{at}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path} must hold a mapping")
    return data
