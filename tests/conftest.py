import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:
    # a worker per core already: torch's default of a thread per core would oversubscribe them
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

SMALL_WORLD = {"seed": 7, "repeats": 2, "test_fraction": 0.3,
               "size": {"regions": 16, "activities": 16, "tools": 16, "species": 12, "cases": 20, "diseases": 16}}


def pytest_collection_modifyitems(items):
    """Whole-DAG tests first: pytest-xdist hands out work in collection order, so the longest
    group starts at once instead of keeping one worker busy alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def run_cli(*args, env=None):
    """`python -m harness ARGS` in a fresh process: (exit status, stderr lines)."""
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    return proc.returncode, proc.stderr.strip().splitlines()


class Killed(Exception):
    """A training run stopped right after a checkpoint, as a kill there would stop it."""


@contextlib.contextmanager
def killed_after_checkpoint(monkeypatch, n: int):
    """Within the block, a training run raises Killed right after writing its `n`-th checkpoint
    (the block expects it); afterwards checkpoints are written as ever, so a rerun resumes."""
    import harness.training.train as train_module

    save, saved = train_module._save_state, []

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        saved.append(1)
        if len(saved) == n:
            raise Killed

    monkeypatch.setattr(train_module, "_save_state", save_then_die)
    try:
        with pytest.raises(Killed):
            yield
    finally:
        monkeypatch.setattr(train_module, "_save_state", save)


def assert_one_line_error(rc, err, *words):
    """Exit status 2, the last line `error: ...` holding every word, and no traceback."""
    assert rc == 2, err
    assert len(err) >= 1 and err[-1].startswith("error: "), err
    assert not any(line.startswith("Traceback") for line in err), err
    for w in words:
        assert w in err[-1], err[-1]


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory):
    """A small generated world on disk (corpus + all six tasks)."""
    from harness.stages import build as stages
    from harness.data import world

    out = tmp_path_factory.mktemp("data") / "world"
    stages.world({"world": SMALL_WORLD, "tasks": list(world.TASKS)}, out)
    return out


@pytest.fixture(scope="session")
def tokenizer_dir(world_dir, tmp_path_factory):
    from harness.stages import build as stages

    out = tmp_path_factory.mktemp("data") / "tokenizer"
    stages.tokenizer({"tokenizer": {"vocab_size": 400}}, world_dir / "corpus.txt", out)
    return out


@pytest.fixture(scope="session")
def tokens_file(world_dir, tokenizer_dir, tmp_path_factory):
    from harness.stages import build as stages

    out = tmp_path_factory.mktemp("data") / "tokens.npy"
    stages.tokens({}, world_dir / "corpus.txt", tokenizer_dir, out)
    return out


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA
