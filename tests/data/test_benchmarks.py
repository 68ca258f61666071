"""Multiple-choice loaders on the real released files (counts of their SOURCE.md), the file-task
split stage, and the one-line error for answers a model's context cannot hold."""

import json

import pytest

from harness.errors import HarnessError
from harness.data.task_files import load_task_file
from harness.data.tasks import TARGET_DELIMITER

# (format, file under ../shared/data, records, gold counts) from each folder's SOURCE.md
RELEASES = [
    ("boolq", "boolq/dev.jsonl", 3270, {1: 2033, 0: 1237}),
    ("piqa", "piqa/valid.jsonl", 1838, None),
    ("winogrande", "winogrande/dev.jsonl", 1267, None),
    ("medmcqa", "medmcqa/validation.jsonl", 4183, {0: 1348, 1: 1085, 2: 925, 3: 825}),
]


@pytest.mark.parametrize("fmt,path,n,golds", RELEASES)
def test_real_files_load_with_their_source_counts(shared_data, fmt, path, n, golds):
    records = load_task_file(shared_data / path, fmt)
    assert len(records) == n
    assert all(0 <= r["gold"] < len(r["choices"]) for r in records)
    if golds:
        counts = {g: sum(r["gold"] == g for r in records) for g in golds}
        assert counts == golds


def test_prompts_are_lm_evals(shared_data):
    boolq = load_task_file(shared_data / "boolq/dev.jsonl", "boolq")[0]
    assert boolq["query"].endswith("\nQuestion: does ethanol take more energy make that produces?\nAnswer:")
    assert boolq["choices"] == ["no", "yes"] and boolq["gold"] == 0  # answer: false
    piqa = load_task_file(shared_data / "piqa/valid.jsonl", "piqa")[0]
    assert piqa["query"] == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"
    wino = load_task_file(shared_data / "winogrande/dev.jsonl", "winogrande")[0]
    assert wino["query"].endswith("after already having a bowl because")
    assert wino["choices"] == ["Ian despised eating intestine.", "Dennis despised eating intestine."]
    assert wino["gold"] == 1
    # joined as SFT and lm-eval join them, query and choice are the sentence with the blank filled
    raw = json.loads((shared_data / "winogrande/dev.jsonl").read_text().splitlines()[0])
    assert wino["query"] + TARGET_DELIMITER + wino["choices"][0] == raw["sentence"].replace("_", raw["option1"])
    med = load_task_file(shared_data / "medmcqa/validation.jsonl", "medmcqa")[0]
    assert med["choices"] == ["A", "B", "C", "D"] and med["query"].startswith("Question: Which of the following")
    assert "\nChoices:\nA. Impulse through myelinated" in med["query"] and med["query"].endswith("\nAnswer:")


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="unknown multiple-choice file format 'mmlu'"):
        load_task_file(tmp_path / "x.jsonl", "mmlu")
    with pytest.raises(HarnessError, match="missing task file"):
        load_task_file(tmp_path / "x.jsonl", "boolq")
    (tmp_path / "valid.jsonl").write_text(json.dumps({"goal": "g", "sol1": "a", "sol2": "b"}) + "\n")
    with pytest.raises(HarnessError, match="PIQA: no label file"):
        load_task_file(tmp_path / "valid.jsonl", "piqa")
    (tmp_path / "valid-labels.lst").write_text("0\n1\n")
    with pytest.raises(HarnessError, match="1 records .* but 2 labels"):
        load_task_file(tmp_path / "valid.jsonl", "piqa")


def test_file_task_stage_splits_deterministically(tmp_path):
    from harness.data import task_data

    rows = [{"goal": f"goal {i}", "sol1": "a" * (i % 7 + 1), "sol2": "b", "answer": 0} for i in range(50)]
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "valid-labels.lst").write_text("\n".join(str(i % 2) for i in range(50)) + "\n")
    spec = {"label": "PIQA", "kind": "file", "format": "piqa", "path": str(tmp_path / "valid.jsonl"),
            "test_fraction": 0.2, "max_records": 40, "max_answer_chars": 5}
    for out in ("a", "b"):
        task_data.export_task({"task": "piqa", "spec": spec}, tmp_path / out)
    read = lambda d, s: (tmp_path / d / f"{s}.jsonl").read_text()
    assert read("a", "test") == read("b", "test") and read("a", "train") == read("b", "train")
    test, train = [[json.loads(l) for l in read("a", s).splitlines()] for s in ("test", "train")]
    kept = sum(i % 7 + 1 <= 5 for i in range(50))  # answers over 5 characters are dropped
    assert len(test) + len(train) == min(40, kept) and len(test) == round(0.2 * min(40, kept))
    assert not {r["query"] for r in test} & {r["query"] for r in train}


def test_adding_a_file_format_is_one_file(tmp_path, monkeypatch):
    """A module in the formats folder is a format named by its file; a helper (`_x.py`) is not."""
    import shutil

    import evals.formats
    import harness.workflow.config
    from harness.data import task_files
    from harness.workflow.config import load_profile, merge, resolve
    from harness.api.plugins import Registry, modules_in

    package = tmp_path / "my_formats"
    shutil.copytree(evals.formats.__path__[0], package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "_shared.py").write_text("")
    (package / "lines.py").write_text(
        "def read(path):\n"
        "    return [{'query': q, 'choices': ['no', 'yes'], 'gold': 1} for q in path.read_text().split('\\n') if q]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    formats = Registry("multiple-choice file format", "harness.formats", lambda: modules_in("my_formats", "read"))
    monkeypatch.setattr(task_files, "FORMATS", formats)
    monkeypatch.setattr(harness.workflow.config, "FORMATS", formats)
    assert "lines" in formats.names() and "_shared" not in formats.names() and "boolq" in formats.names()
    (tmp_path / "q.txt").write_text("a?\nb?\n")
    assert [r["query"] for r in task_files.load_task_file(tmp_path / "q.txt", "lines")] == ["a?", "b?"]
    task = {"label": "Lines", "kind": "file", "format": "lines", "path": str(tmp_path / "q.txt")}
    resolve(merge(load_profile("smoke"), {"tasks": {"lines": task}}))
    with pytest.raises(HarnessError, match="unknown multiple-choice file format 'linez'; did you mean 'lines'"):
        resolve(merge(load_profile("smoke"), {"tasks": {"lines": {**task, "format": "linez"}}}))
