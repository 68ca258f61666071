"""Released multiple-choice files into `{query, choices, gold}` records: the readers are the
modules of evals/formats/ (one file per format, found by the registry), each file plain or
.gz/.bz2/.xz-compressed JSON lines, or one JSON array (harness.io.read_jsonl), every record
checked before it is written anywhere."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.api.plugins import Registry, modules_in

FORMATS = Registry("multiple-choice file format", "harness.formats", lambda: modules_in("evals.formats", "read"))


def answer_index(label) -> int:
    """A label as an index: an int, a digit string ("2", HellaSwag's), or a letter ("C");
    ValueError otherwise."""
    if isinstance(label, str) and len(label.strip()) == 1 and label.strip().isalpha():
        return ord(label.strip().upper()) - ord("A")
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise ValueError(label)
    return int(label)


def gold(label, where: str) -> int:
    """`answer_index`, or a one-line error naming the record."""
    try:
        return answer_index(label)
    except ValueError:
        raise HarnessError(f"{where}: label {label!r} is not an answer index or letter (an unlabelled test "
                           f"split? only labelled splits can be scored)") from None


def load_task_file(path: str | Path, fmt: str) -> list[dict]:
    """The `{query, choices, gold}` records of a released file in format `fmt`, every one checked."""
    from harness.data.tasks import multiple_choice_problem

    read = FORMATS.load(fmt)
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"missing task file {path}")
    try:
        records = read(path)
    except KeyError as e:
        raise HarnessError(f"{path}: a record lacks the field {e.args[0]!r} that format {fmt!r} reads; is "
                           f"`format` right? known: {', '.join(FORMATS.names())}") from None
    for i, record in enumerate(records, 1):
        problem = multiple_choice_problem(record)
        if problem:
            raise HarnessError(f"{path} record {i} (format {fmt!r}): {problem}")
    return records
