"""Instruction-following (generation) tasks: MiniLLM's record format and its loaders.

A generation record is `{prompt, references, instruction, input}`: the prompt the
model continues (MiniLLM's Alpaca template) and the reference responses Rouge-L
takes the best of. Files come in the formats MiniLLM and its sources ship:
- MiniLLM `valid.jsonl` (Dolly, Self-Instruct, S-NI, UnNI): `instruction`,
  `input`, `output` (a string, or a list for S-NI), usually a ready `prompt`;
- Vicuna's question file: `question_id`, `text`, `category`, with reference
  answers from an optional answer file (`question_id`, `text`);
- Self-Instruct's original release: `instruction` and a list of `instances`.
The micro world writes its generation tasks in the MiniLLM format, so one loader
reads both.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError

ALPACA_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.\n\n"
                     "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
          "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
FORMATS = ("minillm", "vicuna", "self_instruct")


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """MiniLLM's prompt (its `prompt` field is this template filled in)."""
    if input:
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA.format(instruction=instruction)


def record(instruction: str, input: str, references: list[str], prompt: str | None = None,
           facts: list[str] | None = None) -> dict:
    """A generation record; `facts` (the micro world's) are the answer strings that only
    knowledge of the entity earns, scored beside Rouge-L (`evals.generation.fact_recall`)."""
    out = {"prompt": prompt or alpaca_prompt(instruction, input), "references": references,
           "instruction": instruction, "input": input}
    return {**out, "facts": facts} if facts else out


def _jsonl(path: Path) -> list[dict]:
    from harness.io import read_jsonl

    return read_jsonl(path, "task file")


def _fields(path: Path, rows: list[dict], needed: tuple[str, ...], fmt: str) -> None:
    """Every row has the fields `fmt` reads; the first that lacks one is a one-line error."""
    for i, row in enumerate(rows, 1):
        missing = [k for k in needed if k not in row]
        if missing:
            raise HarnessError(f"{path} record {i}: lacks {', '.join(missing)}, which format {fmt!r} reads (it has "
                               f"{', '.join(row) or 'no fields'}); is `format` right? known: {', '.join(FORMATS)}")


def load_minillm(path: Path) -> list[dict]:
    rows = _jsonl(path)
    _fields(path, rows, ("instruction", "output"), "minillm")
    out = []
    for i, r in enumerate(rows, 1):
        refs = r["output"] if isinstance(r["output"], list) else [r["output"]]
        out.append(_checked(record(r["instruction"], r.get("input", ""), refs, r.get("prompt"), r.get("facts")),
                            path, i))
    return out


def _checked(rec: dict, path: Path, i: int) -> dict:
    """A generation record with a prompt and at least one non-empty reference: an empty one would
    score 0 against any response, and train on nothing."""
    refs = rec["references"]
    if not (isinstance(rec["prompt"], str) and rec["prompt"].strip()):
        raise HarnessError(f"{path} record {i}: the prompt is empty or not text")
    if not (refs and all(isinstance(x, str) for x in refs) and all(x.strip() for x in refs)):
        raise HarnessError(f"{path} record {i}: `output` must be a non-empty text or a list of them "
                           f"(got {refs!r:.60})")
    return rec


def load_vicuna(path: Path, answers: Path | None = None) -> list[dict]:
    rows = _jsonl(path)
    _fields(path, rows, ("question_id", "text"), "vicuna")
    refs = {}
    if answers:
        answer_rows = _jsonl(answers)
        _fields(answers, answer_rows, ("question_id", "text"), "vicuna answers")
        for a in answer_rows:
            refs.setdefault(a["question_id"], []).append(a["text"])
    return [_checked(record(r["text"], "", refs.get(r["question_id"], [])), path, i) for i, r in enumerate(rows, 1)]


def load_self_instruct(path: Path) -> list[dict]:
    """One record per instance of each instruction."""
    rows = _jsonl(path)
    _fields(path, rows, ("instruction", "instances"), "self_instruct")
    for i, r in enumerate(rows, 1):
        if not (isinstance(r["instances"], list) and all(isinstance(x, dict) and "output" in x for x in r["instances"])):
            raise HarnessError(f"{path} record {i}: `instances` must be a list of objects with an `output`")
    return [_checked(record(r["instruction"], x.get("input", ""), [x["output"]]), path, i)
            for i, r in enumerate(rows, 1) for x in r["instances"]]


def load_instructions(path: str | Path, fmt: str = "minillm", answers: str | Path | None = None) -> list[dict]:
    path = Path(path)
    if fmt == "minillm":
        return load_minillm(path)
    if fmt == "vicuna":
        return load_vicuna(path, Path(answers) if answers else None)
    if fmt == "self_instruct":
        return load_self_instruct(path)
    raise HarnessError(f"unknown instruction format {fmt!r}; known: {', '.join(FORMATS)}")
