"""Downstream tasks: where their records live and how a record becomes an SFT pair.

A multiple-choice record is `{query, choices, gold}`. The same three fields are
what the lm-eval task YAML reads (`doc_to_text: query`, `doc_to_choice: choices`,
`doc_to_target: gold`, `target_delimiter: TARGET_DELIMITER`), so the prompt a
student is fine-tuned on is, by construction, the prompt it is evaluated on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

TARGET_DELIMITER = " "  # between query and answer, in SFT and in lm-eval alike
SPLITS = ("train", "test")
MULTIPLE_CHOICE, GENERATION = "multiple_choice", "generation"


@dataclass(frozen=True)
class Task:
    name: str  # the `{task}` wildcard, e.g. "boolq"
    directory: Path  # holds train.jsonl and test.jsonl
    label: str = ""  # table column, e.g. "BoolQ"
    kind: str = MULTIPLE_CHOICE  # or GENERATION: MiniLLM-format records (harness.data.instructions)

    def path(self, split: str) -> Path:
        return self.directory / f"{split}.jsonl"

    def records(self, split: str) -> list[dict]:
        from harness.io import read_jsonl

        path = self.path(split)
        if not path.is_file():
            raise HarnessError(f"task {self.name!r}: missing {split} file {path}")
        if self.kind == GENERATION:
            from harness.data.instructions import load_minillm

            records = load_minillm(path)
        else:
            records = read_jsonl(path, f"task {self.name!r}: {split} file")
            for i, record in enumerate(records):
                problem = multiple_choice_problem(record)
                if problem:
                    raise HarnessError(f"task {self.name!r}: {path} record {i + 1}: {problem}")
        if split == "test":
            _refuse_repeats(records, f"task {self.name!r}: {path}")
        return records


def _refuse_repeats(records: list[dict], where: str) -> None:
    """A test item twice would count twice in the score and pair with itself across students."""
    first: dict[str, int] = {}
    for i, record in enumerate(records, 1):
        key = item_key(record)
        if key in first:
            raise HarnessError(f"{where}: record {i} repeats record {first[key]} (a test item counts once; "
                               f"remove the repeat)")
        first[key] = i


def multiple_choice_problem(record: dict) -> str | None:
    """What makes `record` unscorable as `{query, choices, gold}`, or None. Every record is checked
    before training or scoring: a `gold` out of range would otherwise be scored as a wrong answer."""
    missing = [k for k in ("query", "choices", "gold") if k not in record]
    if missing:
        return f"lacks {', '.join(missing)} (it has {', '.join(record) or 'no fields'})"
    choices, gold = record["choices"], record["gold"]
    if not isinstance(record["query"], str):
        return f"query is a {type(record['query']).__name__}, not text"
    if not (isinstance(choices, list) and len(choices) >= 2 and all(isinstance(c, str) for c in choices)):
        return "choices must be a list of two or more strings"
    if any(not c.strip() for c in choices):
        return "a choice is empty (nothing to score)"
    if len(set(choices)) != len(choices):
        return "two choices are the same text (the gold one could not be told apart)"
    if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
        return f"gold {gold!r} is not an index into its {len(choices)} choices"
    return None


def item_key(record: dict) -> str:
    """A test item's identity across evaluation files: a hash of what is asked and answered
    (query, choices, gold; or prompt and references), so two students' per-item results pair."""
    import hashlib

    fields = ([record["prompt"], record["references"]] if "prompt" in record
              else [record["query"], record["choices"], record["gold"]])
    return hashlib.sha1(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()[:16]


def sft_pair(record: dict) -> tuple[str, str]:
    """(prompt, response) of a record: a multiple-choice query and its gold choice, or a
    generation record's Alpaca prompt and first reference (the prompt ends in a newline)."""
    if "prompt" in record:
        return record["prompt"], record["references"][0]
    return record["query"], TARGET_DELIMITER + record["choices"][record["gold"]]


def write_jsonl(path: Path, records: list[dict]) -> None:
    from harness.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
