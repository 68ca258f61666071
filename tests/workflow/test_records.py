"""Evaluation records on read (harness/workflow/records.py): each way a record can be malformed or sit
at another student's path stops the report in one line naming the file, instead of a traceback
or a silently wrong cell."""

import json
import math

import pytest

from harness.errors import HarnessError
from harness.workflow.records import load_results, place

STUDENT = "results/smoke/students/masa/olmoe/1L-tiny/seed1/250k"


def _record(**over):
    items = [{"key": f"k{i}", "score": 100.0 * (i % 2), "logliks": [0.0, -1.0]} for i in range(4)]
    record = {"method": "masa", "source": "olmoe", "shape_name": "1L-tiny", "seed": 1, "budget_name": "250k",
              "task": "boolq", "stage": "sft", "value": 50.0, "items": items}
    return {**record, **over}


def _write(tmp_path, record, rel=f"{STUDENT}/eval/boolq.json", raw=None):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(raw if raw is not None else json.dumps(record))
    return path


def test_a_valid_record_and_its_place(tmp_path):
    path = _write(tmp_path, _record())
    assert load_results([path], profile="smoke")[0]["value"] == 50.0
    assert place(path) == ("eval", {"profile": "smoke", "method": "masa", "source": "olmoe", "shape": "1L-tiny",
                                    "seed": "1", "budget": "250k", "task": "boolq"})
    assert place(tmp_path / "results/smoke/sources-eval/olmo/base/piqa.json")[0] == "source_eval"
    assert place(tmp_path / "elsewhere/boolq.json") is None


def _items(scores, keys=None):
    return [{"key": k, "score": s} for k, s in zip(keys or [f"k{i}" for i in range(len(scores))], scores)]


BAD = [
    ("null", None, "holds a JSON NoneType, not an object"),
    ("value NaN", _record(value=math.nan, items=None), r"`value` is nan, not a number in \[0, 100\]"),
    ("value a string", _record(value="50", items=None), "`value` is '50', not a number"),
    ("value out of range", _record(value=250.0, items=None), r"`value` is 250.0, not a number in \[0, 100\]"),
    ("value is not its items' mean", _record(value=100.0), r"`value` 100.0 is not its 4 items' mean 50"),
    ("an item's score NaN", _record(items=_items([math.nan, 100.0])), "item 0 \\(k0\\) has score nan"),
    ("an item without key", _record(items=[{"score": 50.0}]), "item 0 has no string `key`"),
    ("a repeated item", _record(items=_items([0.0, 100.0], ["a", "a"])), "item key 'a' appears twice"),
    ("a string seed", _record(seed="1"), "`seed` is '1', not a non-negative integer"),
    ("a float seed", _record(seed=1.0), "`seed` is 1.0, not a non-negative integer"),
    ("seed 0's record at seed 1's path", _record(seed=0), "records seed 0 but its path names 1"),
    ("another task's record", _record(task="piqa"), "records task 'piqa' but its path names 'boolq'"),
    ("another budget's record", _record(budget_name="500k"), "records budget_name '500k' but its path names '250k'"),
    ("a zero-shot record at the SFT path", _record(stage="zeroshot"), "records stage 'zeroshot'"),
    ("another method's record", _record(method="scratch"), "records method 'scratch'"),
]


@pytest.mark.parametrize("case,record,message", BAD, ids=[c for c, _, _ in BAD])
def test_a_bad_record_is_one_line_naming_its_file(tmp_path, case, record, message):
    path = _write(tmp_path, record)
    with pytest.raises(HarnessError, match=message) as e:
        load_results([path], profile="smoke")
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_another_profile_and_unreadable_text(tmp_path):
    path = _write(tmp_path, _record(), rel=f"{STUDENT.replace('smoke', 'micro')}/eval/boolq.json")
    with pytest.raises(HarnessError, match="belongs to profile 'micro', not 'smoke'"):
        load_results([path], profile="smoke")
    path = _write(tmp_path, None, raw='{"value": ')
    with pytest.raises(HarnessError, match="is not valid JSON"):
        load_results([path])


def test_a_byte_order_mark_is_read(tmp_path):
    path = _write(tmp_path, None, raw="\ufeff" + json.dumps(_record()))
    assert load_results([path])[0]["task"] == "boolq"


def test_source_records_are_checked_against_their_variant(tmp_path):
    record = {"method": "source", "source": "olmo", "shape_name": "olmo", "seed": 0, "task": "piqa",
              "stage": "zeroshot", "value": 60.0}
    base = _write(tmp_path, record, rel="results/smoke/sources-eval/olmo/base/piqa.json")
    assert load_results([base])[0]["method"] == "source"
    sft = _write(tmp_path, record, rel="results/smoke/sources-eval/olmo/sft/piqa.json")
    with pytest.raises(HarnessError, match="records method 'source' but its path names 'source-sft'"):
        load_results([sft])
