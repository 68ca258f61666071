"""`python -m harness timings`: Snakemake's benchmark files summed per rule, and the run's span."""

import os

import pytest

from harness.errors import HarnessError
from harness.cli.timings import read_jobs, summary

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(root, rule, name, wall, cpu, end, rss="100.5"):
    path = root / rule / f"{name}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t0\t{cpu}\n")
    os.utime(path, (end, end))


def test_jobs_are_summed_per_rule_and_the_span_runs_from_first_start_to_last_end(tmp_path):
    _bench(tmp_path, "pretrain", "a/seed0", 10.0, 9.0, 1000.0)
    _bench(tmp_path, "pretrain", "a/seed1", 6.0, 5.0, 1004.0, rss="NA")
    _bench(tmp_path, "sft", "a/seed0/multiple_choice", 8.0, 7.5, 1012.0)
    jobs = read_jobs(tmp_path)
    assert sorted(j.rule for j in jobs) == ["pretrain", "pretrain", "sft"]
    text = summary(jobs, cores=2, startup=2.0)
    assert "| pretrain | 2 | 16.0 | 14.0 | 8.0 | 100 |" in text
    assert "| sft | 1 | 8.0 | 7.5 | 8.0 | 100 |" in text
    # span: first start 1000 - 10 = 990, last end 1012 -> 22 s; floor 24 / 2 = 12 s
    assert "Span, first job's start to last job's end: 22.0 s" in text and "1.83x that floor" in text
    assert "at most 6 s of the jobs' 24 s (25 %) is start-up" in text  # 3 jobs x 2 s
    assert "at most 3 s of the jobs' 24 s (12 %)" in summary(jobs, cores=2, startup=1.0)
    forked = summary(jobs, cores=2, startup=None, forked=True)  # CPU columns then count the clients only
    assert "forked from the warm harness process" in forked and "is start-up" not in forked


def test_missing_and_malformed_benchmarks_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="no benchmark files"):
        read_jobs(tmp_path / "nothing")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "x.tsv").write_text("seconds\n1\n")
    with pytest.raises(HarnessError, match=r"malformed benchmark file .*x\.tsv"):
        read_jobs(tmp_path)


def test_a_training_steps_matmul_flops_are_torchs_count():
    """The floor's FLOPs: 6 per matmul parameter per token is what torch's own counter finds for a
    student's forward and backward (the counter does not see the attention kernel on CPU; the
    floor adds it as 12 * hidden * seq_len a layer)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.models.build import build_model, student_config
    from harness.workflow.plan import matmul_params, train_flops_per_token

    shape, vocab, batch, seq = {"layers": 3, "hidden": 48, "ffn": 160, "heads": 3}, 300, 2, 40
    model = build_model(student_config("s", shape, vocab, seq, None), 0)
    ids = torch.randint(0, vocab, (batch, seq))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
    assert counter.get_total_flops() == 6 * matmul_params(shape, vocab) * batch * seq
    assert train_flops_per_token(shape, vocab, seq) - 6 * matmul_params(shape, vocab) == 12 * 3 * 48 * 40


def test_the_floor_puts_pretraining_jobs_against_their_flops(tmp_path):
    """Two pre-trainings of the smoke profile, one after the other on one core: their FLOPs at
    the given GEMM rate against the core-seconds they had."""
    from harness.cli.timings import floor_table, pretrain_flops
    from harness.workflow.config import load_profile

    config = load_profile("smoke")
    shape, budget = next(iter(config["shapes"])), config["report_budget"]
    name = f"students/scratch/none/{shape}/seed0/{budget}/pretrain"
    _bench(tmp_path, "pretrain", name, 10.0, 9.0, 1000.0)
    _bench(tmp_path, "pretrain", name.replace("seed0", "seed1"), 10.0, 9.0, 1010.0)
    _bench(tmp_path, "sft", "x", 5.0, 5.0, 1015.0)
    jobs = read_jobs(tmp_path)
    flops = pretrain_flops(config, name)
    assert flops and pretrain_flops(config, "students/x/pretrain") is None
    text = floor_table(jobs, config, cores=1, gflops=1.0)
    floor = 2 * flops / 1e9
    assert f"| pretrain | 2 | {2 * flops / 1e9:,.0f} | {floor:,.0f} | 20 | {floor / 20:.0%} |" in text
