"""Choosing an SFT model on a dev set: the answer loss against a reference, the holdout, the
best-and-patience bookkeeping, and "until convergence" runs that stop early, in one process
and in two (DDP and FSDP) alike."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from harness.data.batches import sft_pairs
from harness.training.dev_selection import DevSelection, answer_loss, split_dev
from harness.errors import HarnessError
from harness.models.build import build_model, student_config
from harness.data.tasks import Task

SHAPE = {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}


def _reference_answer_loss(model, pairs, max_len):
    """float64, one pair at a time, the answer tokens' log-probabilities summed by hand."""
    total, count = 0.0, 0
    for prompt, answer in pairs:
        answer = answer[:max_len]
        prompt = prompt[max(0, len(prompt) + len(answer) - max_len):]
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits.double()[0], -1)
        for pos in range(len(prompt), len(prompt) + len(answer)):
            if pos == 0:  # a cut-off prompt: the first token is not predicted
                continue
            total -= float(logp[pos - 1, ids[0, pos]])
            count += 1
    return total / count


@pytest.mark.parametrize("batch_size,max_len", [(1, 64), (3, 64), (8, 9)])
def test_answer_loss_is_the_token_weighted_answer_nll(batch_size, max_len):
    model = build_model(student_config("t", SHAPE, 50, 64), 0).eval()
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randint(1, 50, (int(n),), generator=g).tolist(), torch.randint(1, 50, (int(m),), generator=g).tolist())
             for n, m in zip(torch.randint(1, 12, (7,), generator=g), torch.randint(1, 6, (7,), generator=g))]
    assert answer_loss(model, pairs, 0, max_len, batch_size) == pytest.approx(
        _reference_answer_loss(model, pairs, max_len), rel=1e-5)


def test_the_holdout_is_drawn_by_the_seed_and_not_trained_on(world_dir, tmp_path):
    task = Task("boolq", world_dir / "tasks" / "boolq")
    records = task.records("train")
    train, dev = split_dev(task, records, {"holdout": 0.2}, seed=3)
    again, dev_again = split_dev(task, records, {"holdout": 0.2}, seed=3)
    _, other = split_dev(task, records, {"holdout": 0.2}, seed=4)
    assert len(dev) == round(0.2 * len(records)) and len(train) + len(dev) == len(records)
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert not {key(r) for r in train} & {key(r) for r in dev}
    assert (train, dev) == (again, dev_again) and dev != other
    assert len(split_dev(task, records, {"holdout": 0.2, "examples": 1}, seed=3)[1]) == 1
    with pytest.raises(HarnessError, match="has no dev split"):
        split_dev(task, records, {}, seed=0)
    with pytest.raises(HarnessError, match="leaves no dev or no train record"):
        split_dev(task, records[:3], {"holdout": 0.01}, seed=0)


def test_dev_selection_keeps_the_best_and_stops_after_patience_evaluations():
    model = torch.nn.Linear(2, 1)
    scores = iter([3.0, 2.0, 2.5, 1.0, 1.5, 1.0, 0.5])

    def score(m):  # the weights at each evaluation tell which one was kept
        value = next(scores)
        with torch.no_grad():
            m.bias.fill_(value)
        return value

    selection = DevSelection(score, "loss", keep="best", patience=2)
    seen = []
    while not selection.converged():
        seen.append(selection(model)["loss"])
    assert seen == [3.0, 2.0, 2.5, 1.0, 1.5, 1.0]  # 1.0 again is no improvement: the second in a row
    assert (selection.best, selection.best_index, selection.evaluations) == (1.0, 4, 6)
    selection.restore_best(model)
    assert model.bias.item() == 1.0
    assert selection.record() == {"metric": "loss", "evaluations": 6, "best": 1.0, "best_evaluation": 4,
                                  "kept": "best", "patience": 2, "converged": True}
    rouge = DevSelection(lambda m: 0.5, "rougeL")
    rouge(model), rouge(model)
    assert rouge.best_index == 1 and not rouge.converged()  # higher is better; no patience, no stop


def _student(tmp_path, tokenizer_dir):
    from harness.data.tokenizer import load_tokenizer, special_ids

    tok = load_tokenizer(tokenizer_dir)
    build_model(student_config("t", SHAPE, len(tok), 64, special_ids(tok)), 1).save_pretrained(tmp_path / "pre")
    tok.save_pretrained(tmp_path / "pre")
    return tok


# A learning rate that overfits a tiny student in a few epochs: the dev loss turns up and the run stops.
# 8 train records in batches of 4 split evenly over two processes.
UNTIL_CONVERGED = {"batch_size": 4, "epochs": 30, "max_len": 64, "log_every": 1,
                   "optim": {"lr": 2e-2, "schedule": "constant"},
                   "dev": {"metric": "loss", "every_epochs": 1, "patience": 2, "holdout": 1 / 3, "keep": "best"}}


def test_until_convergence_stops_and_keeps_the_best_dev_loss(tmp_path, tokenizer_dir, world_dir):
    from harness.stages import build as stages

    tok = _student(tmp_path, tokenizer_dir)
    task_dir = world_dir / "tasks" / "boolq"
    stages.sft({"task": "boolq", "sft": UNTIL_CONVERGED}, tmp_path / "pre", task_dir, 0, tmp_path / "out")
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    log = [json.loads(l) for l in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["eval"]["loss"] for r in log if "eval" in r]
    dev = run["dev"]
    assert dev["converged"] and dev["evaluations"] == len(losses) < 30 and run["epochs"] == len(losses)
    assert dev["best"] == min(losses) and dev["best_evaluation"] == losses.index(min(losses)) + 1
    assert dev["evaluations"] - dev["best_evaluation"] == 2  # stopped at the second evaluation without progress
    assert run["steps"] == log[-1]["step"] and "loss" in log[-2]  # the last evaluation's step has its loss line
    # the saved model is the best evaluation's: its dev loss, computed again, is the best
    model, _ = stages.load_model(tmp_path / "out")
    records = Task("boolq", task_dir).records("train")
    _, held = split_dev(Task("boolq", task_dir), records, UNTIL_CONVERGED["dev"], 0)
    pairs = sft_pairs(tok, held)
    assert answer_loss(model.eval(), pairs, tok.pad_token_id, 64, 4) == pytest.approx(min(losses), rel=1e-5)
    assert run["examples"] + run["dev_examples"] == len(records)


def test_a_rouge_dev_metric_on_a_multiple_choice_task_is_refused(tmp_path, tokenizer_dir, world_dir):
    from harness.stages import build as stages

    _student(tmp_path, tokenizer_dir)
    cfg = {"task": "boolq", "sft": {**UNTIL_CONVERGED, "dev": {"every_epochs": 1, "holdout": 0.2}}}
    with pytest.raises(HarnessError, match="dev metric rougeL needs a generation task"):
        stages.sft(cfg, tmp_path / "pre", world_dir / "tasks" / "boolq", 0, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.work").exists()


def test_two_processes_stop_where_one_does(tmp_path, tokenizer_dir, world_dir):
    """Evaluation runs on rank 0 alone (DDP) or on every rank (FSDP); either way the processes
    stop at the same step as one process and save its best weights. So does one process that
    accumulates gradients row by row: answers of unequal length weigh by their tokens."""
    _student(tmp_path, tokenizer_dir)
    runs = {}
    for name, extra in {"one": {}, "ddp": {"devices": 2}, "fsdp": {"devices": 2, "fsdp": True},
                        "accum": {"micro_batch": 1}}.items():
        cfg = {"tasks": [{"task": "boolq", "sft": {**UNTIL_CONVERGED, **extra}}]}
        proc = subprocess.run([sys.executable, "-m", "harness", "sft", "--cfg", json.dumps(cfg), "--pretrained",
                               str(tmp_path / "pre"), "--task", str(world_dir / "tasks" / "boolq"), "--seed", "0",
                               "--source", "none", "--out", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "run.json").read_text())
    for name in ("ddp", "fsdp", "accum"):
        assert runs[name]["steps"] == runs["one"]["steps"]
        assert runs[name]["dev"]["best_evaluation"] == runs["one"]["dev"]["best_evaluation"]
        assert runs[name]["dev"]["best"] == pytest.approx(runs["one"]["dev"]["best"], rel=1e-4)
        one, two = (load_file(tmp_path / n / "model.safetensors") for n in ("one", name))
        for k in one:
            torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-3)


def test_a_sharded_source_keeps_its_best_dev_rouge_checkpoint(tmp_path, tokenizer_dir):
    """The paper profile fine-tunes the sources on Dolly under FSDP and keeps the best dev
    Rouge-L (MiniLLM): generation is collective there, and the kept model is one process's."""
    from harness.data import task_data
    from tests.conftest import SMALL_WORLD

    _student(tmp_path, tokenizer_dir)
    task_dir = tmp_path / "dolly"
    task_data.instruction_task({"task": "dolly", "spec": {"label": "d", "kind": "generated"}, "world": SMALL_WORLD},
                               task_dir)
    sft = {"batch_size": 4, "epochs": 3, "max_len": 64, "optim": {"lr": 1e-2},
           "dev": {"every_epochs": 1, "examples": 4, "keep": "best",
                   "generation": {"sample": False, "max_prompt_tokens": 48, "max_new_tokens": 6}}}
    runs = {}
    for name, extra in {"one": {}, "fsdp": {"devices": 2, "fsdp": True}}.items():
        cfg = {"tasks": [{"task": "dolly", "task_kind": "generation", "sft": {**sft, **extra}}]}
        proc = subprocess.run([sys.executable, "-m", "harness", "sft", "--cfg", json.dumps(cfg), "--pretrained",
                               str(tmp_path / "pre"), "--task", str(task_dir), "--seed", "0", "--source", "none",
                               "--out", str(tmp_path / name)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "run.json").read_text())
    assert runs["fsdp"]["dev"] == runs["one"]["dev"] and runs["one"]["dev"]["evaluations"] == 3
    one, two = (load_file(tmp_path / n / "model.safetensors") for n in ("one", "fsdp"))
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-3)
