"""Generation-task loaders: the real files of ../shared/data (skipped when absent) with the
record counts of their SOURCE.md, and the formats we cannot ship (Vicuna) on written files."""

import json

import pytest

from harness.errors import HarnessError
from harness.data.instructions import alpaca_prompt, load_instructions

REAL = [("dolly/minillm_dolly_valid.jsonl", "minillm", 500),
        ("dolly/minillm_dolly_dev.jsonl", "minillm", 1000),
        ("self_instruct/minillm_self_inst_valid.jsonl", "minillm", 242),
        ("self_instruct/user_oriented_instructions.jsonl", "self_instruct", 252),
        ("sinst/minillm_sinst_11_valid.jsonl", "minillm", 1694),
        ("uinst/distill_dtkd_uinst_valid.jsonl", "minillm", 1050)]


@pytest.mark.parametrize("path,fmt,count", REAL)
def test_real_files_load_with_their_counts(shared_data, path, fmt, count):
    records = load_instructions(shared_data / path, fmt)
    assert len(records) == count
    assert all(r["references"] and all(isinstance(x, str) for x in r["references"]) for r in records)
    # MiniLLM's own prompts are exactly our Alpaca template
    raw = [json.loads(l) for l in (shared_data / path).read_text().splitlines() if l.strip()]
    if fmt == "minillm":
        assert [r["prompt"] for r in records] == [x["prompt"] for x in raw]
        assert all(r["prompt"] == alpaca_prompt(r["instruction"], r["input"]) for r in records)


def test_sinst_keeps_every_reference(shared_data):
    records = load_instructions(shared_data / "sinst/minillm_sinst_11_valid.jsonl")
    raw = [json.loads(l) for l in (shared_data / "sinst/minillm_sinst_11_valid.jsonl").read_text().splitlines()]
    assert [r["references"] for r in records] == [x["output"] for x in raw]
    assert len({x["topic"] for x in raw}) == 37


def test_vicuna_questions_with_and_without_answers(tmp_path):
    """Each question takes its answers as references; a question without one cannot be scored
    (Rouge-L against nothing is 0 for any response): one line naming it."""
    q = tmp_path / "question.jsonl"
    q.write_text("".join(json.dumps({"question_id": i, "text": f"Question {i}?", "category": "generic"}) + "\n"
                         for i in (1, 2)))
    a = tmp_path / "answers.jsonl"
    a.write_text("".join(json.dumps({"question_id": i, "text": f"Answer {i}."}) + "\n" for i in (1, 2)))
    records = load_instructions(q, "vicuna", answers=a)
    assert [r["references"] for r in records] == [["Answer 1."], ["Answer 2."]]
    assert records[0]["prompt"] == alpaca_prompt("Question 1?")
    assert "### Input" not in records[0]["prompt"]
    a.write_text(json.dumps({"question_id": 2, "text": "An answer."}) + "\n")
    with pytest.raises(HarnessError, match="question.jsonl record 1: `output` must be a non-empty text"):
        load_instructions(q, "vicuna", answers=a)


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="missing task file"):
        load_instructions(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(HarnessError, match="is empty"):
        load_instructions(tmp_path / "empty.jsonl")
    (tmp_path / "mc.jsonl").write_text(json.dumps({"query": "q", "choices": ["a"], "gold": 0}) + "\n")
    with pytest.raises(HarnessError, match="record 1: lacks instruction, output, which format 'minillm' reads"):
        load_instructions(tmp_path / "mc.jsonl")
    with pytest.raises(HarnessError, match="unknown instruction format 'alpaca'"):
        load_instructions(tmp_path / "mc.jsonl", "alpaca")


def test_generated_tasks_have_disjoint_entity_splits(tmp_path):
    from harness.data import task_data
    from harness.data import world
    from harness.data.tasks import GENERATION, Task
    from tests.conftest import SMALL_WORLD

    for name in world.GENERATION_TASKS:
        out = tmp_path / name
        task_data.instruction_task({"task": name, "spec": {"label": name, "kind": "generated"}, "world": SMALL_WORLD},
                                out)
        raw = {s: [json.loads(l) for l in (out / f"{s}.jsonl").read_text().splitlines()] for s in ("train", "dev", "test")}
        keys = {s: {r["key"] for r in rs} for s, rs in raw.items()}
        assert all(keys.values()) and not (keys["train"] & keys["test"]) and not (keys["dev"] & keys["test"])
        assert not (keys["train"] & keys["dev"])
        records = Task(name, out, kind=GENERATION).records("test")
        assert records[0]["prompt"].endswith("### Response:\n") and records[0]["references"][0]


def test_file_tasks_read_the_real_files(shared_data, tmp_path):
    from harness.data import task_data

    dev = str(shared_data / "dolly/minillm_dolly_dev.jsonl")
    spec = {"label": "DollyEval", "kind": "file", "train": dev, "dev": dev,
            "test": str(shared_data / "dolly/minillm_dolly_valid.jsonl")}
    # MiniLLM's Dolly dev and valid files share one prompt: refused, unless asked to leave it out
    with pytest.raises(HarnessError, match="1 train records are also test items"):
        task_data.instruction_task({"task": "dolly", "spec": spec}, tmp_path / "dolly")
    assert not (tmp_path / "dolly").exists()
    task_data.instruction_task({"task": "dolly", "spec": {**spec, "train_overlap": "drop"}}, tmp_path / "dolly")
    run = json.loads((tmp_path / "dolly" / "run.json").read_text())
    assert run["records"] == {"train": 999, "dev": 999, "test": 500}
    assert run["dropped_test_items"] == {"train": 1, "dev": 1}
    with pytest.raises(HarnessError, match="has no train file"):
        task_data.instruction_task({"task": "x", "spec": {"label": "x", "kind": "file"}}, tmp_path / "x")


def test_generation_sft_can_keep_the_best_dev_checkpoint(tmp_path, tokenizer_dir):
    """`dev.keep: best` (MiniLLM): the saved model is the evaluation with the best dev Rouge-L,
    scored again here, not the last step's."""
    import torch
    from safetensors.torch import load_file

    from evals.generation import GenerationConfig, evaluate_generation
    from harness.stages import build as stages
    from harness.data import task_data
    from harness.models.build import build_model, student_config
    from harness.data.tasks import GENERATION, Task
    from harness.data.tokenizer import load_tokenizer, special_ids
    from tests.conftest import SMALL_WORLD

    task_dir = tmp_path / "dolly"
    task_data.instruction_task({"task": "dolly", "spec": {"label": "d", "kind": "generated"}, "world": SMALL_WORLD},
                               task_dir)
    tok = load_tokenizer(tokenizer_dir)
    build_model(student_config("t", {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}, len(tok), 128,
                               special_ids(tok)), 0).save_pretrained(tmp_path / "pre")
    tok.save_pretrained(tmp_path / "pre")
    generation = {"sample": False, "max_prompt_tokens": 64, "max_new_tokens": 8}
    sft = {"batch_size": 8, "epochs": 6, "max_len": 128, "optim": {"lr": 3e-3},
           "dev": {"every_epochs": 1, "examples": 6, "generation": generation}}
    runs = {}
    for keep in ("last", "best"):
        cfg = {"task": "dolly", "task_kind": "generation", "sft": {**sft, "dev": {**sft["dev"], "keep": keep}}}
        stages.sft(cfg, tmp_path / "pre", task_dir, 0, tmp_path / keep)
        runs[keep] = json.loads((tmp_path / keep / "run.json").read_text())
    log = [json.loads(l) for l in (tmp_path / "best" / "train_log.jsonl").read_text().splitlines()]
    scores = [r["eval"]["rougeL"] for r in log if "eval" in r]
    dev = runs["best"]["dev"]
    assert len(scores) == 6 and dev["best"] == max(scores) and dev["metric"] == "rougeL"
    assert dev["best_evaluation"] == scores.index(max(scores)) + 1 and dev["evaluations"] == 6
    assert dev["kept"] == "best" and runs["last"]["dev"]["kept"] == "last" and "converged" not in dev
    model, _ = stages.load_model(tmp_path / "best")
    records = Task("dolly", task_dir, kind=GENERATION).records("dev")[:6]
    again = evaluate_generation(model.eval(), tok, records, GenerationConfig.from_dict(generation))["value"]
    assert again == pytest.approx(max(scores))
    if scores.index(max(scores)) != len(scores) - 1:  # the best was not the last: the two models differ
        a, b = (load_file(tmp_path / k / "model.safetensors") for k in ("best", "last"))
        assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("output, problem", [([], "must be a non-empty text"), (None, "must be a non-empty text"),
                                             ("", "must be a non-empty text"), (["a", " "], "must be a non-empty")])
def test_a_generation_record_without_a_reference_is_refused(tmp_path, output, problem):
    """An empty reference scores 0 against any response and trains on nothing: one line, not a
    silent 0 or a traceback inside rouge-score."""
    path = tmp_path / "valid.jsonl"
    path.write_text(json.dumps({"instruction": "Say hi.", "input": "", "output": "hi"}) + "\n"
                    + json.dumps({"instruction": "Say bye.", "input": "", "output": output}) + "\n")
    with pytest.raises(HarnessError, match=f"valid.jsonl record 2: .*{problem}"):
        load_instructions(path)


def test_max_test_keeps_the_first_test_records(tmp_path):
    """`max_test`: MiniLLM evaluates 10,000 of UnNI's 11_ split; a larger file is cut to its first N."""
    from harness.data import task_data

    rows = [{"instruction": f"say {i}", "input": "", "output": f"{i}"} for i in range(7)]
    for name, part in (("train", rows[:2]), ("test", rows[2:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    spec = {"label": "u", "kind": "file", "train": str(tmp_path / "train.jsonl"), "test": str(tmp_path / "test.jsonl"),
            "max_test": 3}
    task_data.instruction_task({"task": "uinst", "spec": spec}, tmp_path / "out")
    test = [json.loads(l) for l in (tmp_path / "out" / "test.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in test] == ["say 2", "say 3", "say 4"]
