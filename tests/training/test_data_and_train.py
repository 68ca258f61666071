"""Batching, exact budgets, resume after a kill, NaN detection."""

import json
import re

import numpy as np
import pytest
import torch

from harness.data.batches import IGNORE, PretrainBatches, SFTBatches, encode_pair
from harness.errors import HarnessError
from harness.models.build import build_model, student_config
from harness.training.train import OptimConfig, TrainSettings, train

TOKENS = np.arange(10_000, dtype=np.int32) % 97


def test_budget_is_trained_exactly_in_whole_sequences():
    b = PretrainBatches(TOKENS, seq_len=16, batch_size=4, budget=16 * 10 + 5, seed=0)
    assert b.steps == 3 and b.tokens_seen == 160
    sizes = [b.batch(s)["input_ids"].shape for s in range(b.steps)]
    assert sizes == [(4, 16), (4, 16), (2, 16)]


def test_batches_are_a_function_of_seed_and_step():
    a, b = (PretrainBatches(TOKENS, 16, 4, 16 * 4 * 50, seed=1) for _ in range(2))
    assert torch.equal(a.batch(7)["input_ids"], b.batch(7)["input_ids"])
    c = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 50, seed=2)
    assert not torch.equal(a.batch(7)["input_ids"], c.batch(7)["input_ids"])


def test_epochs_visit_every_window_once():
    b = PretrainBatches(TOKENS, 100, 10, 100 * 100, seed=0)  # exactly one epoch: 100 windows
    starts = {int(b.batch(s)["input_ids"][r, 0]) for s in range(b.steps) for r in range(10)}
    firsts = {int(TOKENS[w * 100]) for w in range(100)}
    assert starts == firsts


def test_budget_smaller_than_one_batch_is_refused():
    with pytest.raises(HarnessError, match="smaller than one batch"):
        PretrainBatches(TOKENS, 16, 8, 100, seed=0)


def test_sft_labels_cover_the_response_only():
    pairs = [([1, 2, 3], [4, 5]), ([6], [7, 8, 9])]
    batch = SFTBatches(pairs, batch_size=2, epochs=1, seed=0, pad_id=0, max_len=32).batch(0)
    for row_ids, row_labels, row_mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        n = int(row_mask.sum())
        labelled = [int(t) for t, l in zip(row_ids[:n], row_labels[:n]) if l != IGNORE]
        assert labelled in ([4, 5], [7, 8, 9])
        assert (row_labels[n:] == IGNORE).all()


def test_encode_pair_splits_like_lm_eval(tokenizer_dir):
    """lm-eval moves the prompt's trailing space into the continuation and encodes the whole."""
    from harness.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    prompt, response = encode_pair(tok, "Question: which drug?\nAnswer: ", "velfeol")
    assert prompt + response == tok("Question: which drug?\nAnswer: velfeol", add_special_tokens=False)["input_ids"]
    assert tok.decode(response).startswith(" ")


def _tiny_model(seed=0, dropout=0.0):
    config = student_config("t", {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}, 97, 32)
    config.attention_dropout = dropout
    return build_model(config, seed)


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path):
    optim = OptimConfig(lr=1e-2, warmup=0.1)
    batches = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 12, seed=0)
    reference = _tiny_model()
    train(reference, batches, TrainSettings(optim))

    class Killed(Exception):
        pass

    def kill_at_step_7(record):
        if record["step"] == 7:
            raise Killed

    interrupted = _tiny_model()
    with pytest.raises(Killed):
        train(interrupted, batches, TrainSettings(optim, checkpoint_every=5, log_every=1), ckpt_dir=tmp_path,
              on_log=kill_at_step_7, log_path=tmp_path / "log.jsonl")
    resumed = _tiny_model(seed=123)  # the checkpoint, not the init, must decide the weights
    train(resumed, batches, TrainSettings(optim, checkpoint_every=5, log_every=1), ckpt_dir=tmp_path,
          log_path=tmp_path / "log.jsonl")
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    steps = [int(l.split('"step": ')[1].split(",")[0]) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))


def test_nan_loss_stops_with_one_line():
    batches = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 3, seed=0)
    with pytest.raises(HarnessError, match="loss is nan at step 0"):
        train(_tiny_model(), batches, TrainSettings(OptimConfig(lr=1e-3)),
              loss_fn=lambda b, m: m(**b).loss * float("nan"))


def test_training_lowers_the_loss():
    batches = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 60, seed=0)
    losses = []
    train(_tiny_model(), batches, TrainSettings(OptimConfig(lr=1e-2)), on_log=lambda r: losses.append(r["loss"]))
    assert losses[-1] < 0.5 * losses[0]


def test_periodic_evaluation_is_logged_and_leaves_training_unchanged(tmp_path):
    optim = OptimConfig(lr=1e-2, warmup=0.1)
    batches = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 7, seed=0)
    torch.manual_seed(0)
    reference = _tiny_model(dropout=0.5)  # training draws random numbers (dropout masks)
    train(reference, batches, TrainSettings(optim))

    seen = []

    def noisy_eval(model):  # consumes the RNG and flips the mode: neither may leak into training
        assert not model.training
        seen.append(float(torch.rand(())))
        return {"score": len(seen)}

    torch.manual_seed(0)
    evaluated = _tiny_model(dropout=0.5)
    train(evaluated, batches, TrainSettings(optim, log_every=100), log_path=tmp_path / "log.jsonl", eval_every=3,
          eval_fn=noisy_eval, eval_at_start=True)
    for (name, a), b in zip(reference.state_dict().items(), evaluated.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    evals = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines() if '"eval"' in l]
    assert [(e["step"], e["tokens"], e["eval"]["score"]) for e in evals] == [
        (0, 0, 1), (3, 192, 2), (6, 384, 3), (7, 448, 4)]


def test_heldout_windows_are_never_trained_on():
    from harness.data.batches import heldout_start

    tokens = np.arange(16 * 40, dtype=np.int32)  # 40 windows of 16, every token distinct
    b = PretrainBatches(tokens, 16, 4, 16 * 4 * 30, seed=0, heldout=6)  # 120 sequences: 3+ epochs of 34
    trained = {int(t) for s in range(b.steps) for t in b.batch(s)["input_ids"].flatten()}
    held = torch.cat(b.heldout_batches())
    assert held.shape == (6, 16) and [len(x) for x in b.heldout_batches()] == [4, 2]
    assert held.flatten().tolist() == list(range(34 * 16, 40 * 16))  # the stream's last 6 windows
    assert trained == set(range(34 * 16)) and heldout_start(len(tokens), 16, 6) == 34 * 16
    with pytest.raises(HarnessError, match="none left to train on after 40 held out"):
        PretrainBatches(tokens, 16, 4, 64, seed=0, heldout=40)


def test_heldout_loss_is_the_mean_token_cross_entropy():
    from harness.data.batches import heldout_loss

    model = _tiny_model().eval()
    b = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 3, seed=0, heldout=7)  # batches of 4 and 3 windows
    with torch.no_grad():  # independent: HF's own shifted loss, weighted by each batch's predicted tokens
        losses = [(float(model(input_ids=x, labels=x).loss), x[:, 1:].numel()) for x in b.heldout_batches()]
    expected = sum(l * n for l, n in losses) / sum(n for _, n in losses)
    assert heldout_loss(model, b.heldout_batches()) == pytest.approx(expected, rel=1e-5)


def test_one_sft_process_per_student_writes_what_a_job_per_task_does(tmp_path, tokenizer_dir, world_dir):
    """`sft_jobs: student` fine-tunes each task from the same pre-trained student in one process;
    every output must equal the one its own job writes (weights and run record)."""
    from safetensors.torch import load_file

    from harness.stages import build as stages
    from harness.data.tokenizer import load_tokenizer, special_ids

    tok = load_tokenizer(tokenizer_dir)
    shape = {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}
    build_model(student_config("t", shape, len(tok), 64, special_ids(tok)), 1).save_pretrained(tmp_path / "pre")
    tok.save_pretrained(tmp_path / "pre")
    train_cfg = {"batch_size": 8, "epochs": 1, "max_len": 64, "optim": {"lr": 1e-3}}
    slices = [{"task": t, "sft": train_cfg} for t in ("boolq", "piqa")]
    dirs = [world_dir / "tasks" / s["task"] for s in slices]
    stages.sft_tasks({"method": "scratch", "tasks": slices}, tmp_path / "pre", dirs, 3,
                     [tmp_path / "one" / s["task"] for s in slices])
    for s, d in zip(slices, dirs):
        stages.sft_tasks({"method": "scratch", "tasks": [s]}, tmp_path / "pre", [d], 3, [tmp_path / "own" / s["task"]])
        got, want = (load_file(tmp_path / run / s["task"] / "model.safetensors") for run in ("one", "own"))
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
        records = [json.loads((tmp_path / run / s["task"] / "run.json").read_text()) for run in ("one", "own")]
        assert records[0]["config"] == records[1]["config"] == {"method": "scratch", **s}
    boolq, piqa = (load_file(tmp_path / "one" / t / "model.safetensors") for t in ("boolq", "piqa"))
    assert not all(torch.equal(boolq[k], piqa[k]) for k in boolq)  # each task trained from the start


def test_bench_runs_the_harness_loop_and_the_plain_loop(capsys):
    """`python -m harness bench`: both loops train and are reported against the GEMM bound."""
    from harness.cli.bench import bench

    report = bench("smoke", "1L-tiny", steps=2, warmup=1, ops=5)
    assert report["shape"] == "1L-tiny" and report["matmul_params"] < report["params"]
    assert 0 < report["harness_tokens_per_s"] and 0 < report["plain_tokens_per_s"]
    out = capsys.readouterr().out
    assert "harness / plain" in out
    # `--ops`: the step's five costliest operators, per step, with their input shapes
    rows = [line for line in out.split("| operator | input shapes |")[1].splitlines()[2:] if line.startswith("| ")]
    assert len(rows) == 5 and any(line.startswith("| aten::mm | [") for line in rows), rows
    assert re.search(r"the matmuls \(aten::mm, addmm, bmm\) \d+% of it", out)


def test_stacked_seeds_train_exactly_as_one_plain_loop_per_seed():
    """The bench's stacked loop (K models' weights stacked, the step vmapped) must be K plain
    loops at once, each model on its own batches; a mixed-up gradient or batch would show."""
    from harness.cli.bench import _plain_loop, _stacked_loop

    cfg = student_config("odd", {"layers": 2, "hidden": 24, "ffn": 40, "heads": 3}, 97, 16)
    tokens = np.random.default_rng(1).integers(0, 97, size=16 * 40, dtype=np.int32)
    batches = [PretrainBatches(tokens, 16, 3, 16 * 3 * 3, seed=k) for k in range(3)]
    plain = [build_model(cfg, seed=k) for k in range(3)]
    stacked = [build_model(cfg, seed=k) for k in range(3)]
    for model, b in zip(plain, batches):
        _plain_loop(model, b, lr=1e-2, steps=2, warmup=1)
    _stacked_loop(stacked, batches, lr=1e-2, steps=2, warmup=1)
    for k in range(3):
        assert not torch.equal(plain[k].lm_head.weight, build_model(cfg, seed=k).lm_head.weight)  # it trained
        for (name, a), b in zip(plain[k].named_parameters(), stacked[k].parameters()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=f"seed {k}: {name}")


def test_expert_counting_windows_come_from_every_task_in_equal_shares():
    """MASA's "experts active across diverse tasks": 64 windows of the concatenated tasks were
    the first task's alone (BoolQ, on the paper's tasks); now each task gives an equal share."""
    from harness.data.batches import equal_share_windows

    long, short, tiny = list(range(1000)), list(range(1000, 1035)), [7, 8]
    windows = equal_share_windows([long, short, tiny], seq_len=10, max_windows=12)
    assert windows[:4] == [long[i:i + 10] for i in range(0, 40, 10)]  # a share of 12 // 3 = 4
    assert windows[4:] == [short[i:i + 10] for i in range(0, 30, 10)]  # 3 whole windows is all it has
    assert all(len(w) == 10 for w in windows)  # the 2-token task gives none: no padding
    assert len(equal_share_windows([long] * 5, 10, 64)) == 60  # 12 each


def test_a_budget_with_a_longer_horizon_is_that_runs_checkpoint(tmp_path, tokens_file):
    """`pretrain.budgets: checkpoints` (Figure 2's other reading): a budget trained under the
    largest budget's schedule is the larger run stopped there, weight for weight (the larger
    run's checkpoint at that step is the reference); under its own schedule it is not."""
    import torch

    from harness.models.build import build_model, student_config
    from harness.training.runs import pretrain_run
    from harness.training.train import STATE_FILE

    config = student_config("t", {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}, 400, 32)  # the tokenizer's
    train_cfg = {"seq_len": 32, "batch_size": 4, "optim": {"lr": 1e-2, "warmup": 0.25}, "log_every": 1}
    small, large = 32 * 4 * 3, 32 * 4 * 6  # 3 and 6 steps
    for name in ("long", "checkpoint", "own"):
        (tmp_path / name).mkdir()
    long_run = build_model(config, 0)
    pretrain_run(long_run, {**train_cfg, "checkpoint_every": 3}, tokens_file, large, 0, tmp_path / "long", "long")
    at_small = torch.load(tmp_path / "long" / STATE_FILE, weights_only=True)
    assert at_small["step"] == 3
    runs = {}
    for name, horizon in (("checkpoint", large), ("own", None)):
        runs[name] = build_model(config, 0)
        pretrain_run(runs[name], train_cfg, tokens_file, small, 0, tmp_path / name, name, horizon=horizon)
    for key, value in at_small["model"].items():
        assert torch.equal(runs["checkpoint"].state_dict()[key], value), key
    assert any(not torch.equal(runs["own"].state_dict()[k], v) for k, v in at_small["model"].items())


def test_a_resumed_runs_log_is_the_uninterrupted_runs(tmp_path):
    """Checkpoints every 5 steps, a loss line every 3: the run killed after step 6 and resumed logs
    the same losses at the same steps as the run that was never stopped (wall time aside)."""
    import json

    optim = OptimConfig(lr=1e-2, warmup=0.1)
    batches = PretrainBatches(TOKENS, 16, 4, 16 * 4 * 12, seed=0)
    settings = TrainSettings(optim, checkpoint_every=5, log_every=3)

    def lines(path):
        return [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in path.read_text().splitlines()]

    train(_tiny_model(), batches, settings, ckpt_dir=tmp_path / "a", log_path=tmp_path / "a.jsonl")

    class Killed(Exception):
        pass

    def kill_after_step_6(record):  # step 6's line is written, then the run dies
        if record["step"] >= 6:
            raise Killed

    with pytest.raises(Killed):
        train(_tiny_model(), batches, settings, ckpt_dir=tmp_path / "b", log_path=tmp_path / "b.jsonl",
              on_log=kill_after_step_6)
    train(_tiny_model(seed=123), batches, settings, ckpt_dir=tmp_path / "b", log_path=tmp_path / "b.jsonl")
    assert lines(tmp_path / "b.jsonl") == lines(tmp_path / "a.jsonl")
    assert [r["step"] for r in lines(tmp_path / "a.jsonl")] == [3, 5, 6, 9, 10, 12]
