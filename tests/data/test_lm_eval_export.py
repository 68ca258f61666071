"""lm-eval task definitions exported to {query, choices, gold} records, on local copies of
the hub datasets (no hub here): lm-eval's own WinoGrande YAML, whose options differ in the
context, and our CaseHOLD YAML, which lm-eval lacks."""

import json
from pathlib import Path

import lm_eval
import pytest

from harness.data import task_data
from harness.errors import HarnessError
from harness.io import read_jsonl
from harness.data.tasks import TARGET_DELIMITER

WINO = [{"sentence": "The trophy doesn't fit into the suitcase because _ is too large.",
         "option1": "the trophy", "option2": "the suitcase", "answer": "1"},
        {"sentence": "Sarah gave Maria a book since _ had finished reading it.",
         "option1": "Sarah", "option2": "Maria", "answer": "1"}]
CASES = [{"context": "See Smith v. Jones, 123 F.3d 456 (2d Cir. 1999) (<HOLDING>); see also Doe.",
          "endings": [f"holding number {i}" for i in range(5)], "label": 3}]


def local_task(folder: Path, name: str, include: Path, rows: list[dict], train_rows: list[dict] | None = None) -> None:
    """A task YAML that takes `include`'s prompts and reads `rows` (its validation and test splits)
    from a local JSON file, and `train_rows` (by default: `rows` with every text reversed, other
    items) from another."""
    data, train = folder / f"{name}.jsonl", folder / f"{name}_train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if train_rows is None:
        train_rows = [{k: v[::-1] if isinstance(v, str) and k != "answer" else v for k, v in r.items()} for r in rows]
    train.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    files = {"train": str(train), "validation": str(data), "test": str(data)}
    (folder / f"{name}.yaml").write_text(json.dumps({
        "include": str(include), "task": name, "dataset_path": "json", "dataset_name": None,
        "dataset_kwargs": {"data_files": files}}))


def export(tmp_path, name: str) -> list[dict]:
    spec = {"kind": "lm_eval", "lm_eval_task": name, "include_path": str(tmp_path)}
    task_data.export_task({"task": name, "spec": spec}, tmp_path / "out" / name)
    return read_jsonl(tmp_path / "out" / name / "test.jsonl", "export")


def test_winogrande_options_in_the_context_become_one_query(tmp_path):
    lm_eval_yaml = Path(lm_eval.__file__).parent / "tasks/winogrande/default.yaml"
    local_task(tmp_path, "wino_local", lm_eval_yaml, WINO)
    first, second = export(tmp_path, "wino_local")
    assert first == {"query": "The trophy doesn't fit into the suitcase because the",
                     "choices": ["trophy is too large.", "suitcase is too large."], "gold": 0,
                     "continuation": " is too large."}
    assert second["query"] == "Sarah gave Maria a book since" and second["gold"] == 0
    # joined as SFT and lm-eval join them: the sentence with the blank filled by each option
    for record, row in zip((first, second), WINO):
        for choice, option in zip(record["choices"], (row["option1"], row["option2"])):
            assert record["query"] + TARGET_DELIMITER + choice == row["sentence"].replace("_", option)
    # lm-eval's own (partial) scoring rebuilt from the record: its contexts and its target
    from evals.multiple_choice import partial_records
    from harness.data.tasks import Task

    for record, row in zip(partial_records(Task("winogrande", tmp_path), [first, second]), WINO):
        idx = row["sentence"].index("_")
        assert record["contexts"] == [row["sentence"][:idx] + row["option1"], row["sentence"][:idx] + row["option2"]]
        assert record["target"] == row["sentence"][idx + 1:].strip()


def test_casehold_yaml_of_ours_scores_the_holdings_after_the_citation(tmp_path):
    local_task(tmp_path, "casehold_local", task_data.LM_EVAL_TASKS / "casehold.yaml", CASES)
    [record] = export(tmp_path, "casehold_local")
    assert record == {"query": "See Smith v. Jones, 123 F.3d 456 (2d Cir. 1999) (",
                      "choices": CASES[0]["endings"], "gold": 3}


def test_an_unknown_lm_eval_task_is_one_line(tmp_path):
    with pytest.raises(HarnessError, match="lm-eval has no task 'no_such_task'"):
        export(tmp_path, "no_such_task")
