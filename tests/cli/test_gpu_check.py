"""`python -m harness gpu-check` (harness/cli/gpu_check.py): prepared for a GPU, run here at toy
sizes on the CPU, the same code path: every job runs, every figure is a finite number beside the
planner's estimate, and asking for CUDA where there is none is one line."""

import json
import math

import pytest
import torch

from tests.conftest import assert_one_line_error, run_cli


def test_the_gpu_check_runs_every_job_at_toy_sizes_and_writes_one_json(tmp_path):
    from harness.cli.gpu_check import run

    report = run(tmp_path / "check.json", device="cpu", tiny=True, repeats=1)
    assert json.loads((tmp_path / "check.json").read_text()) == json.loads(json.dumps(report))
    jobs = [*report["pretrain"], report["distill"], report["masa"]]
    assert [j["shape"] for j in report["pretrain"]] == ["12L-267M", "16L-877M"]
    for job in jobs:
        assert job["step_seconds"] > 0 and job["estimate_gib"] > 0
        assert job["measured_peak_gib"] is None  # a CPU has no allocator peak; a GPU fills these
    assert all(0 < j["mfu"] < 1 for j in report["pretrain"])
    assert math.isfinite(report["masa"]["svd_tflops"]) and report["masa"]["svd_tflops"] > 0
    assert report["decode"]["decode_step_ms"] > 0
    # the distillation estimate holds the teacher and the KL the planner counts for a paper job
    assert {"teacher (fp32)", "KD loss, saved"} <= set(report["distill"]["estimate_parts_gib"])


def test_asking_for_cuda_without_one_is_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    rc, err = run_cli("gpu-check", "--device", "cuda", "--out", str(tmp_path / "x.json"))
    assert_one_line_error(rc, err, "gpu-check: no CUDA device here")
    assert not (tmp_path / "x.json").exists()
