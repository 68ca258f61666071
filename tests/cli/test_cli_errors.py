"""Bad input stops with one line naming the problem, exit status 2, and no output left behind."""

import json
import subprocess
import sys

import pytest

from tests.conftest import assert_one_line_error, run_cli


def _init_cfg(method="scratch"):
    return json.dumps({"method": method, "shape_name": "t", "seq_len": 32,
                       "shape": {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}})


def test_unknown_method(tmp_path, tokenizer_dir):
    rc, err = run_cli("init", "--cfg", _init_cfg("scrath"), "--tokenizer", str(tokenizer_dir), "--seed", "0",
                      "--out", str(tmp_path / "init"))
    assert_one_line_error(rc, err, "unknown method 'scrath'", "did you mean 'scratch'")
    assert not (tmp_path / "init").exists()


@pytest.mark.parametrize("stage, args", [
    ("extract", ["--source", "src", "--out", "out"]),
    ("init", ["--tokenizer", "tok", "--seed", "0", "--out", "out"]),
    ("pretrain", ["--tokens", "tokens.npy", "--seed", "0", "--out", "out"]),
    ("sft", ["--pretrained", "pt", "--seed", "0", "--task", "task", "--out", "out"]),
    ("eval-untrained", ["--tokenizer", "tok", "--seed", "0", "--tasks", "task", "--outs", "out"]),
])
def test_an_unknown_method_stops_every_method_stage_before_torch_is_imported(tmp_path, stage, args):
    """The registry is data: a typo costs a fraction of a second, not torch's and the tokenizer's load."""
    probe = ("import sys; from harness.cli.main import main; "
             f"rc = main([{stage!r}, '--cfg', {_init_cfg('scrath')!r}, *{args!r}]); print(rc, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    assert "error: unknown method 'scrath'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_source_checkpoint(tmp_path):
    rc, err = run_cli("extract", "--cfg", json.dumps({"method": "scratch", "seed": 0}),
                      "--source", str(tmp_path / "sources" / "olmo"), "--out", str(tmp_path / "artifact"))
    assert_one_line_error(rc, err, "missing source checkpoint")
    assert not (tmp_path / "artifact").exists()


@pytest.fixture(scope="module")
def student(tmp_path_factory, tokenizer_dir):
    out = tmp_path_factory.mktemp("student") / "init"
    rc, err = run_cli("init", "--cfg", _init_cfg(), "--tokenizer", str(tokenizer_dir), "--seed", "0", "--out", str(out))
    assert rc == 0, err
    return out


def test_budget_smaller_than_one_batch(tmp_path, student, tokens_file):
    cfg = {"method": "scratch", "budget": 100, "pretrain": {"seq_len": 32, "batch_size": 8, "optim": {"lr": 1e-3}}}
    rc, err = run_cli("pretrain", "--cfg", json.dumps(cfg), "--init", str(student), "--tokens", str(tokens_file),
                      "--seed", "0", "--out", str(tmp_path / "pt"))
    assert_one_line_error(rc, err, "budget 100 is smaller than one batch")
    assert not (tmp_path / "pt").exists()


def test_a_budget_larger_than_the_corpus_is_refused_unless_repetition_is_asked_for(tmp_path, student, tokens_file):
    """Issue 18 item 11: a budget the corpus cannot fill would silently be several passes of it."""
    import numpy as np

    windows = len(np.load(tokens_file, mmap_mode="r")) // 32
    cfg = {"method": "scratch", "budget": 32 * (windows + 64),
           "pretrain": {"seq_len": 32, "batch_size": 64, "optim": {"lr": 1e-3}}}
    rc, err = run_cli("pretrain", "--cfg", json.dumps(cfg), "--init", str(student), "--tokens", str(tokens_file),
                      "--seed", "0", "--out", str(tmp_path / "pt"))
    assert_one_line_error(rc, err, f"more than the corpus's {windows} trainable windows of 32", "repeat_corpus: true")
    assert not (tmp_path / "pt").exists()
    cfg["pretrain"]["repeat_corpus"] = True
    rc, err = run_cli("pretrain", "--cfg", json.dumps(cfg), "--init", str(student), "--tokens", str(tokens_file),
                      "--seed", "0", "--out", str(tmp_path / "pt"))
    assert rc == 0, err
    assert json.loads((tmp_path / "pt" / "run.json").read_text())["tokens"] == 32 * (windows + 64)


def test_empty_task_file(tmp_path, student):
    task = tmp_path / "task"
    task.mkdir()
    (task / "train.jsonl").write_text("")
    cfg = {"method": "scratch", "tasks": [{"task": "boolq", "sft": {"batch_size": 8, "epochs": 1, "max_len": 64,
                                                                    "optim": {"lr": 1e-3}}}]}
    rc, err = run_cli("sft", "--cfg", json.dumps(cfg), "--pretrained", str(student), "--task", str(task),
                      "--seed", "0", "--out", str(tmp_path / "sft"))
    assert_one_line_error(rc, err, "train file", "is empty")
    assert not (tmp_path / "sft").exists()


def test_nan_loss_in_a_stage(tmp_path, student, tokens_file):
    cfg = {"method": "scratch", "budget": 32 * 8 * 3,
           "pretrain": {"seq_len": 32, "batch_size": 8, "optim": {"lr": 1e30, "grad_clip": 0}}}
    rc, err = run_cli("pretrain", "--cfg", json.dumps(cfg), "--init", str(student), "--tokens", str(tokens_file),
                      "--seed", "0", "--out", str(tmp_path / "pt"))
    assert_one_line_error(rc, err, "loss is nan")
    assert not (tmp_path / "pt").exists()


def test_missing_student_checkpoint(tmp_path):
    cfg = {"method": "scratch", "tasks": ["boolq"], "eval": {}}
    rc, err = run_cli("eval", "--cfg", json.dumps(cfg), "--models", str(tmp_path / "nope"), "--tasks",
                      str(tmp_path), "--outs", str(tmp_path / "e.json"))
    assert_one_line_error(rc, err, "missing fine-tuned checkpoint")
    assert not (tmp_path / "e.json").exists()


def test_sft_task_slices_must_match_the_task_directories(tmp_path, student):
    cfg = {"method": "scratch", "tasks": [{"task": "boolq", "sft": {"batch_size": 8, "epochs": 1, "max_len": 64,
                                                                    "optim": {"lr": 1e-3}}}]}
    rc, err = run_cli("sft", "--cfg", json.dumps(cfg), "--pretrained", str(student), "--task", str(tmp_path),
                      str(tmp_path), "--seed", "0", "--out", str(tmp_path / "a"), str(tmp_path / "b"))
    assert_one_line_error(rc, err, "one slice per --task and --out")
    assert not (tmp_path / "a").exists()


def _stage_args(stage, tmp_path) -> list[str]:
    """Each argument of a stage given a value of its kind (paths that need not exist)."""
    from harness.cli.main import STAGES

    values = {"path": [str(tmp_path / "p")], "path?": ["none"], "paths+": [str(tmp_path / "q")], "paths*": [],
              "int": ["0"], "str": ["olmo"]}
    return [w for a in STAGES[stage].args for w in ([f"--{a.flag}", *values[a.kind]] if values[a.kind] else [])]


@pytest.mark.parametrize("stage", ["world", "tokenizer", "tokens", "source", "extract", "init", "pretrain", "sft",
                                   "eval", "eval-untrained", "eval-generation", "instruction-task", "corpus",
                                   "export-task"])
def test_an_empty_stage_config_is_one_line(stage, tmp_path):
    """`--cfg '{}'`: every stage stops in one line (what its config lacks, or an input that is
    missing), never a KeyError traceback; nothing is written."""
    rc, err = run_cli(stage, "--cfg", "{}", *_stage_args(stage, tmp_path))
    assert_one_line_error(rc, err)
    assert not (tmp_path / "p").exists()


def test_zero_threads_is_a_usage_error():
    rc, err = run_cli("--threads", "0", "validate")
    assert rc == 2 and "--threads: '0' is not a positive whole number" in err[-1]
