"""Multiple-choice accuracy through lm-eval, on the task's local test split.

The task YAML is generated per evaluation from the record fields (see
`harness.data.tasks`): lm-eval scores log p(choice | query) for every choice and
reports accuracy. Built-in task indexing is skipped (`include_defaults=False`,
~17 s saved per job) because our tasks are local files.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.data.tasks import TARGET_DELIMITER, Task, item_key

METRICS = ("acc", "acc_norm")
SCORINGS = ("full", "partial")


def task_yaml(task: Task, lm_eval_name: str, split: str = "test", partial_file: Path | None = None) -> str:
    """An lm-eval task definition reading the task's local JSONL splits (`split` as its test split),
    scoring both of lm-eval's multiple-choice accuracies: `acc` (argmax of the choices'
    log-likelihoods) and `acc_norm` (of log-likelihood per character of the choice).

    With `partial_file` (records of `partial_records`) it is lm-eval's WinoGrande instead: one
    context per option, one shared continuation scored after each (`doc_to_text` is the gold
    index, lm-eval's sign for per-option contexts); acc_norm then divides by the contexts' lengths,
    as lm-eval's does."""
    import json

    files = {"train": str(task.path("train").resolve()), "test": str(task.path(split).resolve())}
    fields = {"doc_to_text": "query", "doc_to_choice": "choices", "doc_to_target": "gold"}
    if partial_file is not None:
        files = {"train": str(partial_file), "test": str(partial_file)}  # zero-shot: train is never read
        fields = {"doc_to_text": "gold", "doc_to_choice": "contexts", "doc_to_target": "target"}
    # JSON is valid YAML and quotes the paths safely
    return json.dumps({
        "task": lm_eval_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": files},
        "training_split": "train",
        "test_split": "test",
        "output_type": "multiple_choice",
        **fields,
        "target_delimiter": TARGET_DELIMITER,
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in METRICS],
        "metadata": {"version": 1.0},
    }, indent=2)


def partial_records(task: Task, records: list[dict]) -> list[dict]:
    """lm-eval's partial scoring of records whose choices end in a shared `continuation` (WinoGrande:
    option + rest of the sentence): contexts query + option, target the continuation, stripped as
    lm-eval's `winogrande` strips the text after the blank."""
    out = []
    for n, r in enumerate(records, 1):
        cont = r.get("continuation")
        if not cont or not cont.strip() or not all(c.endswith(cont) and len(c) > len(cont) for c in r["choices"]):
            raise HarnessError(f"task {task.name!r}: partial scoring needs records whose choices end in a shared "
                               f"`continuation` (WinoGrande read from its files or from lm-eval); test record {n} "
                               f"has none")
        prefix = r["query"] + TARGET_DELIMITER if r["query"] else ""
        out.append({"contexts": [prefix + c[:-len(cont)] for c in r["choices"]], "target": cont.strip(),
                    "gold": r["gold"]})
    return out


def _check_answers_fit(lm, task: Task, records: list[dict], partial: bool) -> None:
    """lm-eval cuts contexts to the model's length but asserts on a longer answer: say which."""
    answers = (lambda r: [r["target"]]) if partial else (lambda r: r["choices"])
    too_long = sum(any(len(lm.tok_encode(TARGET_DELIMITER + c)) > lm.max_length for c in answers(r))
                   for r in records)
    if too_long:
        raise HarnessError(f"task {task.name!r}: {too_long} test questions have an answer longer than the model's "
                           f"{lm.max_length}-token context; use a longer seq_len, or `max_answer_chars` in the "
                           f"task's config to drop them")


# token ids per tokenizer (its fingerprint) and `tok_encode` call, shared by a process's evaluations
_ENCODINGS: dict[str, dict[tuple, list[int]]] = {}


@functools.cache
def _lm_class():
    """lm-eval's HFLM, remembering what it tokenised. lm-eval encodes every request's context
    twice (alone and before its choice), once per choice, and a student's zero-shot and after-SFT
    passes send the same texts: 9 % of an SFT + evaluation job's time went to `tok_encode` (py-spy,
    docs/measurements/2026-12-07-jobs-against-their-floor.md). The ids are the tokenizer's own, so
    no score changes; the cache is keyed by everything that decides them (the tokenizer's
    serialisation, its BOS handling, the call's options)."""
    from lm_eval.models.huggingface import HFLM

    class MemoisedHFLM(HFLM):
        def tok_encode(self, string, add_special_tokens=None, left_truncate_len=None, **kwargs):
            if not hasattr(self, "_encodings"):
                tok = self.tokenizer
                state = getattr(tok, "backend_tokenizer", None)
                if state is None:  # a slow tokenizer: no serialisation to key by, so no cache
                    self._encodings = None
                else:
                    key = repr((type(tok).__name__, state.to_str(), self.add_bos_token, self.prefix_token_id))
                    self._encodings = _ENCODINGS.setdefault(hashlib.sha256(key.encode()).hexdigest(), {})
            if self._encodings is None:
                return super().tok_encode(string, add_special_tokens, left_truncate_len, **kwargs)
            key = (string, add_special_tokens, left_truncate_len, tuple(sorted(kwargs.items())))
            if key not in self._encodings:
                self._encodings[key] = super().tok_encode(string, add_special_tokens, left_truncate_len, **kwargs)
            return list(self._encodings[key])  # callers get their own list, as from the tokenizer

    return MemoisedHFLM


@contextmanager
def _without_environment_report():
    """lm-eval attaches torch's environment report to every `simple_evaluate` result (it runs
    `pip list`, `nvidia-smi` and friends: 3.1 s a call here against 0.4 s for a micro task's
    whole evaluation), and the `git describe` of the working folder, which outside a checkout
    prints "fatal: not a git repository" into the job's log on every call. Nothing here reads
    either, a student's evaluation makes one call per task and stage, and the result records the
    versions that matter (`versions`; the run record has the code's), so both are skipped."""
    import lm_eval.evaluator

    saved = lm_eval.evaluator.add_env_info, lm_eval.evaluator.get_git_commit_hash
    lm_eval.evaluator.add_env_info = lambda storage: None
    lm_eval.evaluator.get_git_commit_hash = lambda: None
    try:
        yield
    finally:
        lm_eval.evaluator.add_env_info, lm_eval.evaluator.get_git_commit_hash = saved


def evaluate_multiple_choice(model_dir: Path, task: Task, cfg: dict[str, Any], split: str = "test") -> dict[str, Any]:
    """Accuracy (x100) of the model in `model_dir` on `task`'s test split, with lm-eval's stderr,
    and per item (test-file order) its key, score (100 correct, 0 wrong) and each choice's
    log-likelihood: `value` is the items' mean, and two students' items pair by key."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    metric = cfg.get("task_metrics", {}).get(task.name, cfg.get("metric", "acc"))
    if metric not in METRICS:
        raise HarnessError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    scoring = cfg.get("task_scoring", {}).get(task.name, "full")
    if scoring not in SCORINGS:
        raise HarnessError(f"unknown scoring {scoring!r}; known: {', '.join(SCORINGS)}")
    records = task.records(split)  # fails early, in one line, on a missing or empty split
    scored = partial_records(task, records) if scoring == "partial" else records
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = _lm_class()(pretrained=str(model_dir), device=device, batch_size=cfg.get("batch_size", 32),
              dtype="float32" if device == "cpu" else "bfloat16")
    _check_answers_fit(lm, task, scored, scoring == "partial")
    name = f"harness_{task.name}"
    with tempfile.TemporaryDirectory() as include, _without_environment_report():
        partial_file = None
        if scoring == "partial":
            from harness.data.tasks import write_jsonl

            partial_file = Path(include, "partial.jsonl")
            write_jsonl(partial_file, scored)
        Path(include, f"{name}.yaml").write_text(task_yaml(task, name, split, partial_file))
        out = simple_evaluate(model=lm, tasks=[name], task_manager=TaskManager(include_path=include,
                                                                                include_defaults=False),
                              limit=cfg.get("limit"), bootstrap_iters=0, log_samples=True,
                              random_seed=0, numpy_random_seed=0, torch_random_seed=0)
    res = out["results"][name]
    stderr = res.get(f"{metric}_stderr,none")  # lm-eval writes "N/A" when it has none
    # filtered_resps holds one (log-likelihood, is-greedy) pair per choice
    items = [{"key": item_key(records[s["doc_id"]]), "score": 100.0 * s[metric],
              "scores": {m: 100.0 * s[m] for m in METRICS}, "logliks": [float(r[0]) for r in s["filtered_resps"]]}
             for s in sorted(out["samples"][name], key=lambda s: s["doc_id"])]
    from importlib.metadata import version

    return {"metric": metric, "scoring": scoring, "value": 100.0 * res[f"{metric},none"],
            "versions": {p: version(p) for p in ("lm_eval", "torch", "transformers")},
            "values": {m: 100.0 * res[f"{m},none"] for m in METRICS},
            "stderr": 100.0 * stderr if isinstance(stderr, float) else None,
            "n": len(items), "items": items}
