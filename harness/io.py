"""Atomic outputs and the run record stored beside every artifact.

Every stage writes into a temporary sibling and renames it into place, so a
killed job never leaves a half-written output that Snakemake (or a human)
could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

RUN_RECORD = "run.json"


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
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
    from harness.errors import HarnessError

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def read_jsonl(path: str | Path, name: str = "file") -> list[dict]:
    """The records of a JSON-lines file; a missing, empty or malformed file is a one-line error
    naming the file as `name` (e.g. "task 'boolq': train file")."""
    from harness.errors import HarnessError

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing {name} {path}")
    records = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise HarnessError(f"{name} {path}:{lineno} is not valid JSON") from None
    if not records:
        raise HarnessError(f"{name} {path} is empty")
    return records
