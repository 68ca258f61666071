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


def test_a_forwards_matmul_flops_are_torchs_count():
    """The evaluation's floor: 2 per matmul parameter per token is torch's count for a forward
    (attention, unseen by the counter on CPU, is 4 * hidden * n^2 a layer)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.cli.timings import forward_flops
    from harness.models.build import build_model, student_config
    from harness.workflow.plan import matmul_params

    shape, vocab, n = {"layers": 2, "hidden": 40, "ffn": 88, "heads": 5}, 301, 23
    model = build_model(student_config("s", shape, vocab, 64, None), 0)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=torch.randint(0, vocab, (1, n)))
    assert counter.get_total_flops() == 2 * matmul_params(shape, vocab) * n
    assert forward_flops(shape, vocab, n) - 2 * matmul_params(shape, vocab) * n == 4 * 2 * 40 * n * n


def _smoke_run(tmp_path, world_dir, tokenizer_dir):
    """A run folder of the smoke profile holding the world, a tokenizer and the olmoe source's record."""
    from harness.workflow.config import load_profile
    from harness.workflow.grid import Grid

    config = load_profile("smoke")
    grid = Grid(config)
    run = tmp_path / "run"
    (run / grid.WORLD).parent.mkdir(parents=True)
    (run / grid.WORLD).symlink_to(world_dir)
    (run / grid.TOKENIZER).symlink_to(tokenizer_dir)
    (run / grid.path("source", source="olmoe")).mkdir(parents=True)
    (run / grid.path("source", source="olmoe") / "source.json").write_text('{"tokens": 8192}')
    return config, grid, run


def test_the_floor_counts_each_rules_flops_from_the_runs_files(tmp_path, world_dir, tokenizer_dir):
    """Fine-tuning and evaluation FLOPs from the task files, one sequence at a time; a distilled
    pre-training adds its teacher's forward; a source its tokens at the active FLOPs a token passes."""
    from harness.cli.timings import Floors, Job, forward_flops
    from harness.data.tasks import TARGET_DELIMITER, Task, sft_pair
    from harness.data.tokenizer import load_tokenizer
    from harness.workflow.plan import matmul_params, train_flops_per_token

    config, grid, run = _smoke_run(tmp_path, world_dir, tokenizer_dir)
    floors, vocab, tok = Floors(config, run), config["tokenizer"]["vocab_size"], load_tokenizer(tokenizer_dir)
    w = {"method": "scratch", "source": "none", "shape": "1L-tiny", "seed": 0, "budget": "250k"}
    shape, sft = config["shapes"]["1L-tiny"], config["sft"]
    name = "students/scratch/none/1L-tiny/seed0/250k"
    trained, evaluated = 0, 0
    for task in grid.mc_tasks:
        task_files = Task(task, run / grid.task_path(task))
        for r in task_files.records("train"):
            prompt, answer = sft_pair(r)
            n = min(len(tok(prompt + answer, add_special_tokens=False)["input_ids"]) + 1, sft["max_len"])
            trained += sft["epochs"] * (6 * matmul_params(shape, vocab) * n + 12 * shape["layers"] * shape["hidden"] * n * n)
        for r in task_files.records("test"):
            for c in r["choices"]:
                n = len(tok(r["query"] + TARGET_DELIMITER + c, add_special_tokens=False)["input_ids"]) - 1
                evaluated += forward_flops(shape, vocab, n)
    job = Job("sft", 1, 1, 1, 1, name + "/sft/multiple_choice")
    assert Floors(config, run)(job) == trained  # no evaluation written yet: the fine-tuning alone
    for task in grid.mc_tasks:  # the zero-shot and after-SFT passes (this world has no paraphrase split)
        for path in ("eval", "eval_zeroshot"):
            (run / grid.path(path, task=task, **w)).parent.mkdir(parents=True, exist_ok=True)
            (run / grid.path(path, task=task, **w)).write_text("{}")
    assert floors(job) == trained + 2 * evaluated
    # pre-training: the budget's tokens, the held-out windows; a teacher's forward when distilling
    seq, tokens = config["seq_len"], config["budgets"]["250k"]["tokens"]
    plain = floors(Job("pretrain", 1, 1, 1, 1, name + "/pretrain"))
    assert plain > train_flops_per_token(shape, vocab, seq) * tokens
    olmo = config["sources"]["olmo"]
    teacher = matmul_params(olmo, vocab) * 2 + 4 * olmo["layers"] * olmo["hidden"] * seq
    assert floors(Job("pretrain", 1, 1, 1, 1, name.replace("scratch/none", "distill/olmo") + "/pretrain")) \
        == plain + teacher * tokens
    # a MoE source: attention, 2 of 4 experts and the router, the head, x6; and attention's scores
    moe, h = config["sources"]["olmoe"], config["sources"]["olmoe"]["hidden"]
    per_token = 6 * (2 * (4 * h * h + 2 * 3 * h * moe["ffn"] + 4 * h) + vocab * h) + 12 * 2 * h * 64
    assert floors(Job("source", 1, 1, 1, 1, "sources/olmoe")) == 8192 * per_token
    assert floors(Job("source", 1, 1, 1, 1, "sources/olmo")) is None  # no record: not estimated
    assert floors(Job("extract", 1, 1, 1, 1, "artifacts/masa/olmoe")) is None
    (run / grid.TOKENIZER).unlink()  # a run folder without its data: its jobs are not estimated
    assert Floors(config, run)(job) is None


def test_the_floor_table_puts_each_rule_against_the_core_seconds_it_had(tmp_path):
    """Two pre-trainings one after the other on one core, and a job the floor does not estimate."""
    from harness.cli.timings import floor_table

    _bench(tmp_path, "pretrain", "a", 10.0, 9.0, 1000.0)
    _bench(tmp_path, "pretrain", "b", 10.0, 9.0, 1010.0)
    _bench(tmp_path, "extract", "c", 5.0, 5.0, 1015.0)
    text = floor_table(read_jobs(tmp_path), lambda job: {"a": 4e9, "b": 6e9}.get(job.name), cores=1,
                       gflops=1.0)
    assert "| pretrain | 2 | 10 | 10 | 20 | 50% |" in text
    # the span: 990 to 1015, 25 s, against 10 s of FLOPs at 1 GFLOP/s on one core
    assert "need 10 s on 1 cores at that rate; the run's span was 25 s (40% of it at the floor)" in text
    assert "Not estimated: extract (5 core-s)" in text
