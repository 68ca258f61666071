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
