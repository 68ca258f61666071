"""lm-eval's accuracy on our task files equals a direct log-likelihood computation."""

import json

import pytest
import torch

from harness.data.batches import encode_pair
from harness.models.build import build_model, student_config
from harness.data.tasks import TARGET_DELIMITER, Task
from harness.data.tokenizer import load_tokenizer


def reference_scores(model, tok, records):
    """Per record: sum log p(choice tokens | query) of each choice, computed here with plain torch."""
    out = []
    for r in records:
        scores = []
        for choice in r["choices"]:
            prompt, cont = encode_pair(tok, r["query"], TARGET_DELIMITER + choice)
            ids = torch.tensor([prompt + cont])
            with torch.no_grad():
                logp = model(ids).logits.log_softmax(-1)[0, len(prompt) - 1:-1]
            scores.append(float(logp.gather(1, torch.tensor(cont)[:, None]).sum()))
        out.append(scores)
    return out


def reference_accuracy(model, tok, records):
    """argmax over choices of sum log p(choice tokens | query)."""
    correct = [max(range(len(s)), key=s.__getitem__) == r["gold"]
               for s, r in zip(reference_scores(model, tok, records), records)]
    return 100.0 * sum(correct) / len(records)


def test_lm_eval_accuracy_matches_reference(world_dir, tokenizer_dir, tmp_path):
    from evals.multiple_choice import evaluate_multiple_choice

    tok = load_tokenizer(tokenizer_dir)
    config = student_config("t", {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}, len(tok), 256,
                            {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                             "pad_token_id": tok.pad_token_id})
    model = build_model(config, seed=0).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    task = Task("medmcqa", world_dir / "tasks" / "medmcqa")
    result = evaluate_multiple_choice(tmp_path, task, {"batch_size": 4, "metric": "acc"})
    records = task.records("test")
    expected = reference_accuracy(model, tok, records)
    assert result["n"] == len(records)
    assert abs(result["value"] - expected) < 1e-6, (result, expected)
    # per item, in test-file order: the record's key, its score, each choice's log-likelihood
    from harness.data.tasks import item_key

    items = result["items"]
    assert [i["key"] for i in items] == [item_key(r) for r in records]
    assert len(set(i["key"] for i in items)) == len(items)
    assert sum(i["score"] for i in items) / len(items) == pytest.approx(result["value"])
    for item, ref, r in zip(items, reference_scores(model, tok, records), records):
        assert item["logliks"] == pytest.approx(ref, abs=1e-4)
        assert item["score"] == (100.0 if max(range(len(ref)), key=ref.__getitem__) == r["gold"] else 0.0)
        # lm-eval's acc_norm: the argmax of log-likelihood per character of the choice
        per_char = [ll / len(c) for ll, c in zip(ref, r["choices"])]
        assert item["scores"]["acc_norm"] == (100.0 if max(range(len(ref)), key=per_char.__getitem__) == r["gold"]
                                             else 0.0)
    assert result["values"]["acc"] == pytest.approx(result["value"])
    assert result["values"]["acc_norm"] == pytest.approx(sum(i["scores"]["acc_norm"] for i in items) / len(items))
    # a task's own metric (`eval.task_metrics`) is the one reported
    norm = evaluate_multiple_choice(tmp_path, task, {"batch_size": 4, "metric": "acc",
                                                     "task_metrics": {"medmcqa": "acc_norm"}})
    assert norm["metric"] == "acc_norm" and norm["value"] == pytest.approx(result["values"]["acc_norm"])
    assert [i["score"] for i in norm["items"]] == [i["scores"]["acc_norm"] for i in items]


def test_winogrande_partial_scoring_is_lm_evals(tokenizer_dir, tmp_path):
    """`eval.task_scoring: {winogrande: partial}` scores log p(rest of sentence | sentence up to the
    blank + option), as lm-eval's `winogrande` does, on records read from WinoGrande's own format;
    the default scores option + rest given the sentence up to the blank."""
    from evals.multiple_choice import evaluate_multiple_choice
    from evals.formats.winogrande import read as winogrande
    from harness.errors import HarnessError
    from harness.data.tasks import write_jsonl

    tok = load_tokenizer(tokenizer_dir)
    config = student_config("t", {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}, len(tok), 256)
    model = build_model(config, seed=3).eval()
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    rows = [("The trophy did not fit in the suitcase because the _ was too big.", "trophy", "suitcase", "1"),
            ("Anna gave Maria the book because _ had finished it.", "Anna", "Maria", "1"),
            ("The cat chased the mouse until _'s legs gave out.", "cat", "mouse", "2"),
            ("After the storm the river carried _ downstream for miles.", "sand", "wood", "2")]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps({"sentence": s, "option1": a, "option2": b, "answer": n})
                                                + "\n" for s, a, b, n in rows))
    records = winogrande(tmp_path / "dev.jsonl")
    for split in ("train", "test"):
        write_jsonl(tmp_path / "task" / f"{split}.jsonl", records)
    task = Task("winogrande", tmp_path / "task")
    partial = evaluate_multiple_choice(tmp_path / "model", task, {"batch_size": 2,
                                                                  "task_scoring": {"winogrande": "partial"}})
    full = evaluate_multiple_choice(tmp_path / "model", task, {"batch_size": 2})
    assert (partial["scoring"], full["scoring"]) == ("partial", "full")
    for item, (sentence, a, b, _) in zip(partial["items"], rows):
        before, _, after = sentence.partition("_")
        expected = []
        for option in (a, b):  # lm-eval's winogrande: context before + option, target after.strip()
            prompt, cont = encode_pair(tok, before + option, TARGET_DELIMITER + after.strip())
            with torch.no_grad():
                logp = model(torch.tensor([prompt + cont])).logits.log_softmax(-1)[0, len(prompt) - 1:-1]
            expected.append(float(logp.gather(1, torch.tensor(cont)[:, None]).sum()))
        assert item["logliks"] == pytest.approx(expected, abs=1e-4)
    for item, other, ref in zip(full["items"], partial["items"], reference_scores(model, tok, records)):
        assert item["logliks"] == pytest.approx(ref, abs=1e-4)
        assert item["logliks"] != pytest.approx(other["logliks"], abs=1e-2)  # the two scorings differ
    assert [i["key"] for i in partial["items"]] == [i["key"] for i in full["items"]]  # the same items pair
    # records without a shared continuation (the micro world's WinoGrande) cannot be scored so
    write_jsonl(tmp_path / "plain" / "test.jsonl", [{k: v for k, v in r.items() if k != "continuation"}
                                                    for r in records])
    write_jsonl(tmp_path / "plain" / "train.jsonl", records)
    with pytest.raises(HarnessError, match="partial scoring needs records whose choices end in a shared"):
        evaluate_multiple_choice(tmp_path / "model", Task("winogrande", tmp_path / "plain"),
                                 {"task_scoring": {"winogrande": "partial"}})


def test_an_answer_longer_than_the_context_is_a_one_line_error(tokenizer_dir, tmp_path):
    import pytest

    from evals.multiple_choice import evaluate_multiple_choice
    from harness.errors import HarnessError
    from harness.data.tasks import write_jsonl

    tok = load_tokenizer(tokenizer_dir)
    config = student_config("t", {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}, len(tok), 16)
    build_model(config, seed=0).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    records = [{"query": "Q:", "choices": ["short", "a long answer " * 10], "gold": 0},
               {"query": "Q:", "choices": ["yes", "no"], "gold": 1}]
    for split in ("train", "test"):
        write_jsonl(tmp_path / "task" / f"{split}.jsonl", records)
    with pytest.raises(HarnessError, match="task 'piqa': 1 test questions have an answer longer than the "
                                           "model's 16-token context"):
        evaluate_multiple_choice(tmp_path / "model", Task("piqa", tmp_path / "task"), {"batch_size": 2})


def test_evaluate_scores_the_paraphrase_split_and_a_source_directory(world_dir, tokenizer_dir, tmp_path):
    """The eval stage: fine-tuned students on test and on the held-out phrasing; a source directory
    (manifest) read through its model path, its records marked with the config's `stage`."""
    from harness.stages import evaluate as eval_stages

    tok = load_tokenizer(tokenizer_dir)
    config = student_config("t", {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}, len(tok), 256,
                            {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                             "pad_token_id": tok.pad_token_id})
    model = build_model(config, seed=1).eval()
    model.save_pretrained(tmp_path / "src" / "model")
    tok.save_pretrained(tmp_path / "src" / "model")
    (tmp_path / "src" / "source.json").write_text('{"name": "s", "arch": "llama", "model_path": "model"}')
    task_dir = world_dir / "tasks" / "piqa"
    cfg = {"tasks": ["piqa"], "eval": {"batch_size": 4}, "method": "source", "source": "s", "stage": "zeroshot"}
    outs, para = [tmp_path / "test.json"], [tmp_path / "para.json"]
    eval_stages.evaluate(cfg, [tmp_path / "src"], [task_dir], outs, paraphrase_outs=para)
    test, paraphrase = (json.loads(p.read_text()) for p in (outs[0], para[0]))
    assert test["stage"] == "zeroshot" and paraphrase["stage"] == "paraphrase"
    records = Task("piqa", task_dir).records("paraphrase")
    assert paraphrase["value"] == pytest.approx(reference_accuracy(model, tok, records))
    assert paraphrase["n"] == test["n"] == len(records)


def test_the_untrained_student_is_scored_as_built_and_chained_stages_share_one_process(world_dir, tokenizer_dir,
                                                                                      tmp_path):
    """`eval-untrained` scores the student `build_student` makes (the reference: the same student
    rebuilt here, scored with plain torch); `a :: b` runs both stages in one command."""
    import subprocess
    import sys

    from harness.models.build import student_config
    from harness.data.tokenizer import special_ids

    shape = {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}
    cfg = {"method": "scratch", "method_options": {}, "shape_name": "t", "shape": shape, "seq_len": 256,
           "seed": 5, "tasks": ["boolq", "piqa"], "eval": {"batch_size": 16}, "stage": "untrained"}
    tasks = [world_dir / "tasks" / t for t in cfg["tasks"]]
    outs = [tmp_path / f"{t}.json" for t in cfg["tasks"]]
    again = [tmp_path / f"{t}-again.json" for t in cfg["tasks"]]
    common = ["--cfg", json.dumps(cfg), "--tokenizer", str(tokenizer_dir), "--seed", "5", "--tasks", *map(str, tasks)]
    proc = subprocess.run([sys.executable, "-m", "harness", "eval-untrained", *common, "--outs", *map(str, outs),
                           "::", "eval-untrained", *common, "--outs", *map(str, again)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tok = load_tokenizer(tokenizer_dir)
    model = build_model(student_config("t", shape, len(tok), 256, special_ids(tok)), 5).eval()
    for name, task, out, out2 in zip(cfg["tasks"], tasks, outs, again):
        result = json.loads(out.read_text())
        assert result["stage"] == "untrained" and result["seed"] == 5
        assert result["value"] == pytest.approx(reference_accuracy(model, tok, Task(name, task).records("test")))
        assert json.loads(out2.read_text())["value"] == result["value"]


def test_a_multi_device_stage_is_not_chained(capsys):
    from harness.cli.main import main

    sft = json.dumps({"method": "scratch", "tasks": [{"task": "boolq", "sft": {"devices": 2}}]})
    rc = main(["sft", "--cfg", sft, "--pretrained", "p", "--seed", "0", "--task", "t", "--out", "o",
               "::", "eval", "--cfg", "{}", "--models", "o", "--tasks", "t", "--outs", "e.json"])
    assert rc == 2
    assert "sft :: eval: a stage on 2 devices runs alone" in capsys.readouterr().err


def test_an_evaluation_does_not_collect_torchs_environment_report(world_dir, tokenizer_dir, tmp_path, monkeypatch,
                                                                  capfd):
    """lm-eval runs torch's environment report (pip list, nvidia-smi: ~3 s) on every call, and
    `git describe` in the working folder; a micro student makes one call per task and stage. The
    evaluation records versions instead, and a run outside a checkout logs no git error."""
    import torch.utils.collect_env

    from evals.multiple_choice import evaluate_multiple_choice

    calls = []
    monkeypatch.setattr(torch.utils.collect_env, "get_pretty_env_info", lambda: calls.append(1) or "")
    tok = load_tokenizer(tokenizer_dir)
    build_model(student_config("t", {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}, len(tok), 256,
                               {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                                "pad_token_id": tok.pad_token_id}), seed=0).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    monkeypatch.chdir(tmp_path)  # not a git checkout
    capfd.readouterr()
    result = evaluate_multiple_choice(tmp_path, Task("boolq", world_dir / "tasks" / "boolq"), {"batch_size": 8})
    assert calls == [] and set(result["versions"]) == {"lm_eval", "torch", "transformers"}
    assert "not a git repository" not in capfd.readouterr().err
    import lm_eval.evaluator

    assert lm_eval.evaluator.add_env_info.__module__ == "lm_eval.loggers.utils"  # restored afterwards
    assert lm_eval.evaluator.get_git_commit_hash.__module__ == "lm_eval.loggers.utils"


def test_remembered_tokenisation_is_the_tokenizers_own(world_dir, tokenizer_dir, tmp_path):
    """lm-eval's HFLM with its `tok_encode` remembered gives the ids of the plain one, per tokenizer:
    two tokenizers never share an entry, and a caller changing its list changes nothing cached."""
    import random

    from lm_eval.models.huggingface import HFLM

    from evals import multiple_choice
    from harness.stages import build as stages

    other_dir = tmp_path / "tokenizer-300"
    stages.tokenizer({"tokenizer": {"vocab_size": 300}}, world_dir / "corpus.txt", other_dir)
    records = Task("piqa", world_dir / "tasks" / "piqa").records("test")[:20]
    rng = random.Random(0)
    texts = [r["query"] for r in records] + [r["query"] + TARGET_DELIMITER + c for r in records for c in r["choices"]]
    texts += ["".join(rng.choice("ab é\n.<s>") for _ in range(rng.randrange(1, 30))) for _ in range(40)]
    multiple_choice._ENCODINGS.clear()
    for n, tok_dir in enumerate([tokenizer_dir, other_dir]):
        tok = load_tokenizer(tok_dir)
        config = student_config("t", {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}, len(tok), 64,
                                {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                                 "pad_token_id": tok.pad_token_id})
        model_dir = tmp_path / f"model-{n}"
        build_model(config, seed=0).save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
        plain = HFLM(pretrained=str(model_dir), device="cpu", batch_size=1)
        remembered = multiple_choice._lm_class()(pretrained=str(model_dir), device="cpu", batch_size=1)
        for _ in range(2):  # the second pass reads the cache
            for text in texts:
                for options in ({}, {"add_special_tokens": False}, {"left_truncate_len": 5}):
                    assert remembered.tok_encode(text, **options) == plain.tok_encode(text, **options), (n, text)
        remembered.tok_encode(texts[0]).append(-1)
        assert remembered.tok_encode(texts[0]) == plain.tok_encode(texts[0])
        assert len(multiple_choice._ENCODINGS) == n + 1  # one cache per tokenizer
