"""Training curves in TensorBoard and W&B (harness/training/board.py): read back with their own
readers, and a resumed run's curve equal to the uninterrupted run's."""

import json

import pytest

from harness.stages import build as stages
from tests.conftest import killed_after_checkpoint

TINY = {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}


def scalars(run_dir, name):
    """{tag: [(step, value)]} of a TensorBoard run, through tensorboard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard" / name))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _pretrain(tmp_path, tokenizer_dir, tokens_file, out):
    init = tmp_path / "init"
    if not init.exists():
        stages.init({"method": "scratch", "shape_name": "t", "seq_len": 32, "shape": TINY}, tokenizer_dir, 0, init)
    cfg = {"method": "scratch", "shape_name": "t", "budget": 32 * 4 * 12, "heldout": {"sequences": 2, "every_steps": 4, "seq_len": 32},
           "pretrain": {"seq_len": 32, "batch_size": 4, "checkpoint_every": 4, "log_every": 2,
                        "repeat_corpus": True, "optim": {"lr": 1e-3}}}
    stages.pretrain(cfg, tokens_file, 0, out, init_dir=init)


def test_a_pre_training_writes_its_curves_for_tensorboard(tmp_path, tokenizer_dir, tokens_file):
    out = tmp_path / "pt"
    _pretrain(tmp_path, tokenizer_dir, tokens_file, out)
    log = [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]
    tb = scalars(out, "pretrain-scratch-t")
    losses = [(r["step"], r["loss"]) for r in log if "loss" in r]
    assert [s for s, _ in tb["loss"]] == [s for s, _ in losses]
    assert [v for _, v in tb["loss"]] == pytest.approx([v for _, v in losses], rel=1e-6)
    assert {"lr", "grad_norm", "tokens_per_second", "eval/heldout_loss"} <= set(tb)
    assert all(v > 0 for _, v in tb["tokens_per_second"]) and all(v > 0 for _, v in tb["grad_norm"])


def test_a_resumed_runs_curve_is_the_uninterrupted_runs(tmp_path, tokenizer_dir, tokens_file, monkeypatch):
    """Killed after its second checkpoint (step 8) and resumed: what the killed run logged past the
    checkpoint is purged from TensorBoard's view, so the loss curve is the uninterrupted run's."""
    _pretrain(tmp_path, tokenizer_dir, tokens_file, tmp_path / "whole")
    with killed_after_checkpoint(monkeypatch, 2):
        _pretrain(tmp_path, tokenizer_dir, tokens_file, tmp_path / "resumed")
    _pretrain(tmp_path, tokenizer_dir, tokens_file, tmp_path / "resumed")
    whole, resumed = (scalars(tmp_path / run, "pretrain-scratch-t") for run in ("whole", "resumed"))
    for tag in ("loss", "lr", "grad_norm", "eval/heldout_loss"):
        # one process writes both runs here, so their files' names (time, pid, a counter) need not sort
        # in run order as two jobs' do; TensorBoard plots by step
        got, want = sorted(resumed[tag]), sorted(whole[tag])
        assert [step for step, _ in got] == [step for step, _ in want], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6), tag


def test_wandb_logs_the_same_curve_offline(tmp_path, tokenizer_dir, tokens_file, monkeypatch):
    """`HARNESS_WANDB_PROJECT` with `WANDB_MODE=offline`: the run's W&B files stay beside its output,
    holding every logged loss (W&B's own run file: values as JSON, beside their keys)."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("HARNESS_WANDB_PROJECT", "harness-test")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "pt"
    _pretrain(tmp_path, tokenizer_dir, tokens_file, out)
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    data = next(runs[0].glob("run-*.wandb")).read_bytes()
    losses = [json.loads(l)["loss"] for l in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in l]
    assert b"grad_norm" in data and b"tokens_per_second" in data
    assert all(json.dumps(v).encode() in data for v in losses)


def test_wandb_asked_for_but_missing_is_one_line(tmp_path, monkeypatch):
    import builtins

    from harness.errors import HarnessError
    from harness.training.board import Board

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv("HARNESS_WANDB_PROJECT", "p")
    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(HarnessError, match="HARNESS_WANDB_PROJECT is set but wandb is not installed"):
        Board(tmp_path, "run")
