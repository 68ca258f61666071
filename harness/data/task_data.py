"""The `{query, choices, gold}` and instruction records of every task, from where they come:
the micro world, released files (`evals/formats/`, `harness.data.instructions`) or an lm-eval
task's own prompt functions. Every split is written atomically with its run record; a train
split that holds test items is refused."""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError, first_line
from harness.io import atomic_dir, write_run_record


def instruction_task(cfg: dict, out: Path) -> None:
    """A generation task's train/dev/test splits in MiniLLM's format: generated from the micro
    world, or read from files (`train`, `dev`, `test` paths in one of harness.data.instructions' formats)."""
    from harness.data.instructions import load_instructions

    spec = cfg["spec"]
    if spec["kind"] == "generated":
        from harness.data import world as w

        if cfg["task"] not in w.GENERATION_TASKS:
            raise HarnessError(f"the micro world has no generation task {cfg['task']!r}; "
                               f"it has {', '.join(w.GENERATION_TASKS)}")
        wc = cfg["world"]
        splits = w.make_task(w.make_world(wc["seed"], wc["size"]), cfg["task"], wc["seed"], wc["test_fraction"])
        splits = {k: [{**r, "output": [r["output"]]} for r in v] for k, v in splits.items()}
    else:
        for split in ("train", "test"):  # config validation says so too; a hand-written --cfg may not
            if split not in spec:
                raise HarnessError(f"generation task {cfg['task']!r} has no {split} file")
        splits = {}
        for split in ("train", "dev", "test"):
            if split in spec:
                fmt = split_format(spec, split)
                records = load_instructions(spec[split], fmt, spec.get("answers") if fmt == "vicuna" else None)
                splits[split] = [{"instruction": r["instruction"], "input": r["input"], "output": r["references"],
                                  "prompt": r["prompt"]} for r in records]
        if "max_test" in spec:  # MiniLLM's UnNI: 10,000 of its 11_ split, the file's first as released
            splits["test"] = splits["test"][:spec["max_test"]]
    _write_splits(cfg, out, splits, "instruction-task", _prompt)


def split_format(spec: dict, split: str) -> str:
    """A generation file's format: `format` for every split, or a mapping per split (Vicuna's
    questions as the test file beside Dolly's train and dev files), MiniLLM's by default."""
    fmt = spec.get("format", "minillm")
    return fmt.get(split, "minillm") if isinstance(fmt, dict) else fmt


def _prompt(record: dict) -> str:
    return record["prompt"]


def _question(record: dict) -> str:
    """What a multiple-choice item asks (query and choices, not the answer): the identity by which
    a train record leaks a test item."""
    return json.dumps([record["query"], record["choices"]], ensure_ascii=False)


def _draw_splits(records: list[dict], spec: dict) -> dict[str, list[dict]]:
    """A fixed draw of an evaluation-only file's records: exact repeats dropped (a question in both
    splits would be trained on), then `test_fraction` of (at most `max_records`) records form the
    test split and the rest the train split."""
    import numpy as np

    firsts: dict[str, dict] = {}
    for r in records:
        firsts.setdefault(_question(r), r)
    unique = list(firsts.values())
    order = np.random.default_rng(0).permutation(len(unique))[:spec.get("max_records")]
    n_test = max(1, round(spec.get("test_fraction", 0.3) * len(order)))
    return {"test": [unique[i] for i in order[:n_test]], "train": [unique[i] for i in order[n_test:]]}


def _write_splits(cfg: dict, out: Path, splits: dict[str, list[dict]], stage: str, identity, **extra) -> None:
    """Write a task's splits. A train (or dev) record that is a test item (`identity` says what
    makes two records the same item) is refused, or, with the task's `train_overlap: drop`, left
    out of its split with a notice and counted in the run record (released files can share a
    few prompts: MiniLLM's Dolly dev and valid files share one)."""
    import sys

    from harness.data.tasks import write_jsonl

    task, policy = cfg["task"], cfg.get("spec", {}).get("train_overlap", "refuse")
    test = {identity(r) for r in splits["test"]}
    dropped = {}
    for split in ("train", "dev"):
        leaked = [r for r in splits.get(split, []) if identity(r) in test]
        if leaked and policy != "drop":
            raise HarnessError(f"task {task!r}: {len(leaked)} {split} records are also test items (the first ends "
                               f"{identity(leaked[0])[-60:]!r}); fine-tuning would see the test set: give disjoint "
                               f"files, or set `train_overlap: drop` under the task to leave them out")
        if leaked:
            splits[split] = [r for r in splits[split] if identity(r) not in test]
            dropped[split] = len(leaked)
            print(f"notice: task {task!r}: {len(leaked)} {split} records are test items and are left out",
                  file=sys.stderr)
    if not splits.get("train"):
        raise HarnessError(f"task {task!r}: no records left to train on")
    with atomic_dir(out) as tmp:
        for split, rs in splits.items():
            write_jsonl(tmp / f"{split}.jsonl", rs)
        write_run_record(tmp, stage, cfg, records={k: len(v) for k, v in splits.items()},
                         **({"dropped_test_items": dropped} if dropped else {}), **extra)


def task_from_file(cfg: dict, out: Path) -> None:
    """A multiple-choice task from released files (`evals/formats/`): separate `train` and
    `test` files, or one `path` (only dev/valid splits carry labels in most releases) split here
    by `_draw_splits`; answers longer than `max_answer_chars` are dropped first."""
    from harness.data.task_files import load_task_file

    spec = cfg["spec"]
    fmt = spec.get("format", cfg["task"])

    def answerable(records: list[dict]) -> list[dict]:
        limit = spec.get("max_answer_chars")  # answers longer than a small model's context cannot be scored
        return [r for r in records if limit is None or max(map(len, r["choices"])) <= limit]

    if "path" in spec:
        splits = _draw_splits(answerable(load_task_file(spec["path"], fmt)), spec)
    else:
        splits = {split: answerable(load_task_file(spec[split], fmt)) for split in ("train", "test")}
    _write_splits(cfg, out, splits, "task-from-file", _question)


LM_EVAL_TASKS = Path(__file__).resolve().parents[2] / "evals" / "lm_eval_tasks"  # lm-eval YAMLs of ours


def _lm_eval_task(name: str, include: list[str], download: bool):
    """lm-eval's task `name`, looked up among our YAMLs and `include` folders first (indexing
    lm-eval's own ~10,000 task files takes ~17 s), its dataset read from the local Hugging Face
    cache unless `download` (offline by default: no 40 s of retries, then a traceback)."""
    import os

    if not download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval.tasks import TaskManager

    for include_defaults in (False, True):
        manager = TaskManager(include_path=[str(LM_EVAL_TASKS), *include], include_defaults=include_defaults)
        if name in manager.all_tasks:
            try:
                return manager.load(name)["tasks"][name]
            except Exception as e:  # noqa: BLE001 - datasets' and the hub's errors are many and deep
                how = ("it could not be downloaded" if download else
                       "it is not in the local Hugging Face cache (set `download: true` under the task to fetch it)")
                raise HarnessError(f"lm-eval task {name!r}: its dataset cannot be loaded: {how}; or read a local "
                                   f"file with `kind: file` ({type(e).__name__}: "
                                   f"{first_line(e, 160)})") from None
    raise HarnessError(f"lm-eval has no task {name!r} (nor {LM_EVAL_TASKS} or the task's include_path)")


def _shared_query(contexts: list[str], continuation: str) -> tuple[str, list[str]]:
    """One query for a task whose options differ in the context (WinoGrande: the option fills a
    blank, then a shared continuation is scored): the contexts' common prefix up to its last
    space (no word is split), and each context's rest with the continuation as a choice, so that
    query + TARGET_DELIMITER + choice is the context + continuation."""
    import os

    cut = os.path.commonprefix(contexts).rfind(" ")
    if cut < 0:
        return "", [c + continuation for c in contexts]
    return contexts[0][:cut], [c[cut + 1:] + continuation for c in contexts]


def export_task(cfg: dict, out: Path) -> None:
    """Render an lm-eval task's train and test docs with lm-eval's own prompt functions into
    `{query, choices, gold}` records, so SFT and evaluation see lm-eval's exact prompts
    (a `file` task is read from its released files instead). A task without a train split is
    split here like an evaluation-only file, when `test_fraction` asks for it."""
    if cfg["spec"]["kind"] == "file":
        return task_from_file(cfg, out)
    from harness.data.tasks import TARGET_DELIMITER

    spec = cfg["spec"]
    name = spec.get("lm_eval_task", cfg["task"])
    task = _lm_eval_task(name, [spec["include_path"]] if "include_path" in spec else [], spec.get("download", False))
    delimiter = task.config.target_delimiter
    if delimiter != TARGET_DELIMITER:
        raise HarnessError(f"lm-eval task {name!r} joins query and answer with {delimiter!r}; "
                           f"records here are joined with {TARGET_DELIMITER!r}")

    def render(docs) -> list[dict]:
        records = []
        for doc in docs:
            query, choices, target = task.doc_to_text(doc), task.doc_to_choice(doc), task.doc_to_target(doc)
            extra = {}
            if isinstance(query, int):  # per-option contexts: the text is the gold index
                gold = query
                query, choices = _shared_query(choices, delimiter + target)
                extra = {"continuation": delimiter + target}  # what lm-eval's own (partial) scoring scores
            else:
                gold = target if isinstance(target, int) else choices.index(target)
            records.append({"query": query, "choices": choices, "gold": gold, **extra})
        return records

    test_docs = task.test_docs() if task.has_test_docs() else task.validation_docs() if task.has_validation_docs() else None
    if test_docs is None:
        raise HarnessError(f"lm-eval task {name!r} has neither a test nor a validation split")
    splitting = {"test_fraction", "max_records"} & set(spec)
    if task.has_training_docs():
        if splitting:
            raise HarnessError(f"task {cfg['task']!r}: lm-eval task {name!r} has its own train split; "
                               f"{' and '.join(sorted(splitting))} split only a task without one: remove them")
        splits = {"train": render(task.training_docs()), "test": render(test_docs)}
    elif "test_fraction" in spec:
        splits = _draw_splits(render(test_docs), spec)
    else:
        raise HarnessError(f"task {cfg['task']!r}: lm-eval task {name!r} has no train split; give `test_fraction` "
                           f"(and `max_records`) to split its evaluation docs here")
    _write_splits(cfg, out, splits, "export-task", _question, lm_eval_task=name)
