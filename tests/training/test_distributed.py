"""Data-parallel (DDP, FSDP), gradient-accumulated and compiled pre-training equal the plain single-process run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.stages import build as stages

SHAPE = {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}


def pretrain(tmp_path, tokens_file, name, **training):
    cfg = {"method": "scratch", "method_options": {}, "shape_name": "t", "budget": 32 * 4 * 6,
           "pretrain": {"seq_len": 32, "batch_size": 4, "log_every": 1, "optim": {"lr": 3e-3}, **training}}
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "harness", "pretrain", "--cfg", json.dumps(cfg),
                           "--init", str(tmp_path / "init"), "--tokens", str(tokens_file), "--seed", "0",
                           "--source", "none", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["processes"] == training.get("devices", 1)
    return load_file(out / "model.safetensors"), [json.loads(l) for l in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture
def initialised(tmp_path, tokenizer_dir):
    stages.init({"method": "scratch", "shape_name": "t", "shape": SHAPE, "seq_len": 32}, tokenizer_dir, 0,
                tmp_path / "init")
    return tmp_path


def test_two_processes_and_micro_batches_train_the_same_model(initialised, tokens_file):
    plain, plain_log = pretrain(initialised, tokens_file, "plain")
    ddp, ddp_log = pretrain(initialised, tokens_file, "ddp", devices=2)
    fsdp, _ = pretrain(initialised, tokens_file, "fsdp", devices=2, fsdp=True)
    accum, accum_log = pretrain(initialised, tokens_file, "accum", micro_batch=1)
    # torch.compile's graph capture with the quick backend (inductor's C++ build takes ~30 s here)
    compiled, _ = pretrain(initialised, tokens_file, "compiled", compile="aot_eager")
    assert fsdp.keys() == plain.keys()
    for name, w in plain.items():
        torch.testing.assert_close(ddp[name], w, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(fsdp[name], w, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(accum[name], w, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(compiled[name], w, atol=2e-5, rtol=1e-4)
    assert not torch.equal(plain["model.layers.0.mlp.up_proj.weight"],
                           load_file(initialised / "init" / "model.safetensors")["model.layers.0.mlp.up_proj.weight"])
    # one log, from rank 0, with the global token count and the mean loss over processes
    assert [r["tokens"] for r in ddp_log] == [r["tokens"] for r in plain_log]
    for a, b in zip(ddp_log, plain_log):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_an_unknown_compile_backend_is_one_line(initialised, tokens_file):
    cfg = {"method": "scratch", "method_options": {}, "shape_name": "t", "budget": 32 * 4 * 2,
           "pretrain": {"seq_len": 32, "batch_size": 4, "compile": "inductr", "optim": {"lr": 3e-3}}}
    proc = subprocess.run([sys.executable, "-m", "harness", "pretrain", "--cfg", json.dumps(cfg),
                           "--init", str(initialised / "init"), "--tokens", str(tokens_file), "--seed", "0",
                           "--source", "none", "--out", str(initialised / "bad")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith("error: unknown torch.compile backend 'inductr'; known: ")
    assert not (initialised / "bad").exists()


def test_a_batch_that_does_not_split_over_the_processes_is_refused(initialised, tokens_file):
    cfg = {"method": "scratch", "method_options": {}, "shape_name": "t", "budget": 32 * 3 * 2,
           "pretrain": {"seq_len": 32, "batch_size": 3, "devices": 2, "optim": {"lr": 3e-3}}}
    proc = subprocess.run([sys.executable, "-m", "harness", "pretrain", "--cfg", json.dumps(cfg),
                           "--init", str(initialised / "init"), "--tokens", str(tokens_file), "--seed", "0",
                           "--source", "none", "--out", str(initialised / "odd")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0
    assert "a batch of 3 sequences does not split evenly over 2 processes" in proc.stderr
    assert not (initialised / "odd").exists()


def test_a_sharded_run_resumes_from_its_sharded_checkpoint(tmp_path):
    out = tmp_path / "result.json"
    worker = Path(__file__).with_name("fsdp_resume_worker.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(worker), str(out), str(tmp_path / "work")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["tensors"] > 0 and result["max_diff"] < 1e-5
    assert (tmp_path / "work" / "state.dcp").is_dir()  # the step-5 shards, one file per process
