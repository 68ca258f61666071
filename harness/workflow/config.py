"""Profiles: loading, merging and validating the workflow config.

`config/micro.yaml` is the complete default; other profiles are diffs merged
on top of it, the way Snakemake merges `--configfile` (dicts recursively,
lists and scalars replaced). Validation happens before any rule runs and
fails with one line naming the key and what is allowed.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.api.plugins import unknown_name_message
from harness.workflow.grid import NO_SOURCE, row_label, rows
from harness.io import load_yaml, read_yaml
from harness.data.task_files import FORMATS

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_PROFILE = "micro"
# Names become path components and command-line words: no separators, no spaces, no shell
# syntax, no leading dot (so neither `..` nor a hidden file).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")  # a path component, well under any filesystem's limit
NAMED_SECTIONS = ("shapes", "sources", "budgets", "tasks", "generation_tasks")


def check_names(config: dict) -> None:
    """Refuse a shape, source, budget or task name that is unsafe in a path or a shell command."""
    for section in NAMED_SECTIONS:
        section_value = config.get(section)
        for name in section_value if isinstance(section_value, dict) else ():
            if not (isinstance(name, str) and SAFE_NAME.fullmatch(name)):
                raise HarnessError(f"config error: {section}: the name {name!r} is not safe in a path or a shell "
                                   f"command; use up to 64 letters, digits and . _ + - (starting with a letter or "
                                   f"digit)")


def check_labels(config: Any, where: str = "") -> None:
    """Every `label` (a row's, a source's, a task's, a shape's) is one Markdown table cell: a `|`
    would add a column to every table it is in, a line break end the row."""
    if isinstance(config, dict):
        for key, value in config.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "label" and isinstance(value, str) and ("|" in value or "\n" in value or "\r" in value):
                raise HarnessError(f"config error: {here}: {value!r} is a table cell; no `|` or line break")
            check_labels(value, here)
    elif isinstance(config, list):
        for i, value in enumerate(config):
            check_labels(value, f"{where}[{i}]")


def merge(base: dict, diff: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in diff.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def drop_nulls(config: Any) -> Any:
    """Remove keys set to null: how a profile diff deletes a shape, task or budget of the default."""
    if isinstance(config, dict):
        return {k: drop_nulls(v) for k, v in config.items() if v is not None}
    return config


def resolve(config: dict) -> dict:
    """The merged config with deleted keys removed, validated, data paths resolved."""
    config = with_twin_shapes(drop_nulls(config))
    validate(config)
    return with_micro_batches(with_data_dir(config))


def with_micro_batches(config: dict) -> dict:
    """Each training section's `micro_batch: auto` as the number the planner chooses."""
    auto = [name for name in ("pretrain", "sft", "sft_generation") if config.get(name, {}).get("micro_batch") == "auto"]
    if not auto:
        return config
    from harness.workflow.plan import auto_micro_batch

    config = copy.deepcopy(config)
    for name in auto:
        config[name]["micro_batch"] = auto_micro_batch(config, name)
    return config


def with_twin_shapes(config: dict) -> dict:
    """A `llama` source naming a student `shape` takes that shape's sizes (the controls' twin)."""
    if not any("shape" in spec for spec in config.get("sources", {}).values()):
        return config
    config = copy.deepcopy(config)
    for name, spec in config["sources"].items():
        if "shape" in spec:
            if spec["shape"] not in config.get("shapes", {}):
                raise HarnessError(f"config error: sources.{name}.shape: " + _unknown(
                    "shape", spec["shape"], list(config.get("shapes", {}))))
            spec.update({k: config["shapes"][spec["shape"]][k] for k in ("layers", "hidden", "ffn", "heads")})
    return config


def _unknown(kind: str, name: str, known: list[str]) -> str:
    return unknown_name_message(kind, name, known)


def with_data_dir(config: dict) -> dict:
    """Relative data file paths (the corpus's, `file` tasks', generation task files) joined to
    `data_dir`, when the profile names one (micro-real reads ../shared/data this way)."""
    if "data_dir" not in config:
        return config
    config = copy.deepcopy(config)
    root = Path(config["data_dir"])

    def join(p: str) -> str:
        return p if Path(p).is_absolute() else str(root / p)

    corpus = config["corpus"]
    if "path" in corpus:
        corpus["path"] = [join(p) for p in corpus["path"]] if isinstance(corpus["path"], list) else join(corpus["path"])
    for spec in config["tasks"].values():
        for key in ("path", "train", "test"):
            if key in spec:
                spec[key] = join(spec[key])
    for spec in config.get("generation_tasks", {}).values():
        for key in ("train", "dev", "test", "answers"):
            if key in spec:
                spec[key] = join(spec[key])
    return config


def load_profile(*names_or_paths: str) -> dict:
    """The resolved config of a profile name (`smoke`) or a YAML path, validated; several are
    merged in order over the default, as Snakemake merges several `--configfile`s
    (`load_profile("paper", "paper-toy")`)."""
    default = CONFIG_DIR / f"{DEFAULT_PROFILE}.yaml"
    config = read_yaml(default)
    for name_or_path in names_or_paths:
        path = Path(name_or_path)
        if not path.suffix:
            path = CONFIG_DIR / f"{name_or_path}.yaml"
        if path.resolve() != default.resolve():
            config = merge(config, read_yaml(path))
    return resolve(config)


@lru_cache(maxsize=1)
def _schema() -> dict:
    return load_yaml((CONFIG_DIR / "schema.yaml").read_text())


def _where(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "<top level>"


def _one_line(error) -> str:
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if allowed:
            return f"unknown key {extra[0]!r} in {where}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return f"{where}: {error.message}"


def full_schema() -> dict:
    """config/schema.yaml with each report section's fragment (harness.workflow.report.Section) under its key."""
    from harness.workflow.report import sections

    schema = copy.deepcopy(_schema())
    for key, section in sections().items():
        if key in schema["properties"]:
            raise HarnessError(f"config section {key!r} is both in config/schema.yaml and a report's section")
        schema["properties"][key] = section.schema
    return schema


def _validator():
    """The schema's validator, where `integer` means an int: JSON Schema counts 5120.0 as an
    integer, which would pass validation and then fail a job (a token count, a seed in a path)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(full_schema())


def validate(config: dict[str, Any]) -> None:
    """Raise HarnessError (one line) unless `config` is a valid resolved profile: the schema, then
    what a schema cannot say (names defined elsewhere, keys that exclude each other), then each
    report section's own checks."""
    import jsonschema

    check_names(config)
    check_labels(config)
    error = jsonschema.exceptions.best_match(_validator().iter_errors(config))
    if error is not None:
        raise HarnessError(f"config error: {_one_line(error)}")
    for check in (_check_methods, _check_training, _check_tasks, _check_dev_sections, _check_shapes,
                  _check_corpus, _check_sources, check_sections, _check_all_skips):
        check(config)


def _check_all_skips(config: dict) -> None:
    from harness.api.plugins import did_you_mean
    from harness.workflow.report import report_names

    for name in config.get("all_skips", []):
        if name not in report_names():
            raise HarnessError(f"config error: all_skips: {name!r} is not a report{did_you_mean(name, report_names())}")


def _check_methods(config: dict) -> None:
    """The `methods:` rows: registered methods from known sources, each student once, labels
    unique; `method_options` of registered methods, options they accept."""
    from harness.api.registry import check_composition, check_options, implements

    for i, row in enumerate(config["methods"]):
        must_be_method(f"methods[{i}]", row["name"])
        must_be_one_of(f"methods[{i}]", "source", row.get("source", NO_SOURCE), [*config["sources"], NO_SOURCE])
    for name in config.get("method_options", {}):
        must_be_method("method_options", name)
    for name in {row["name"] for row in config["methods"]} | set(config.get("method_options", {})):
        try:
            check_composition(name, config.get("method_options", {}))
            check_options(name, config.get("method_options", {}))
        except HarnessError as e:
            raise HarnessError(f"config error: {e}") from None
    seen = {}
    for i, row in enumerate(config["methods"]):  # (each composition's hooks are known to be unique by now)
        if implements(row["name"], "extract") and row.get("source", NO_SOURCE) == NO_SOURCE:
            raise HarnessError(f"config error: methods[{i}]: {row['name']} extracts from a source; give it one "
                               f"(`source:`, one of {', '.join(config['sources'])})")
        key = (row["name"], row.get("source", NO_SOURCE))  # a table cell is keyed by its row's method and source
        if key in seen:
            raise HarnessError(f"config error: methods[{i}] repeats methods[{seen[key]}] ({key[0]} from {key[1]}): "
                               "two rows of one student would render as one")
        seen[key] = i
    labels = [row_label(config, r) for r in config["methods"]]
    if len(set(labels)) != len(labels):
        raise HarnessError(f"config error: methods: two rows share a label ({', '.join(labels)})")
    if "compare_to" in config:
        must_be_one_of("compare_to", "row", config["compare_to"], labels)


def _check_training(config: dict) -> None:
    """Source training's length, the held-out windows, the report budget and the budgets."""
    trained_here = any("model_path" not in spec for spec in config["sources"].values())
    st = config["source_training"]
    if trained_here and ("budget" in st) == ("passes" in st):
        raise HarnessError("config error: source_training: give exactly one of `budget` (tokens) or `passes`")
    if "passes" in st and config["corpus"]["kind"] != "world":
        raise HarnessError("config error: source_training.passes counts passes of the generated world; "
                           "with another corpus give `budget` (tokens)")
    if "heldout" in config and trained_here and st.get("seq_len") != config["pretrain"].get("seq_len"):
        raise HarnessError("config error: heldout: the held-out windows are counted in pretrain.seq_len, so "
                           "source_training.seq_len must equal it (sources must not train on them)")
    must_name(config, "report_budget", "budget", config["report_budget"], "budgets")
    batch_tokens = config["pretrain"]["batch_size"] * config["pretrain"].get("seq_len", 0)
    for name, budget in config["budgets"].items():
        if budget["tokens"] < batch_tokens:
            raise HarnessError(f"config error: budgets.{name}: {budget['tokens']} tokens is smaller than one "
                               f"pre-training batch (pretrain.batch_size x seq_len = {batch_tokens})")


def _check_tasks(config: dict) -> None:
    """Each task's keys are those its kind reads, its files given one way, its format known."""
    for section in ("task_metrics", "task_scoring"):
        for task in config.get("eval", {}).get(section, {}):
            must_name(config, f"eval.{section}", "task", task, "tasks")
    uses_world = config["corpus"]["kind"] == "world" or any(
        t["kind"] == "generated" for t in config["tasks"].values())
    if uses_world and "world" not in config:
        raise HarnessError("config error: the generated corpus and tasks need a `world` section")
    for name, spec in config["tasks"].items():
        _check_task_keys(f"tasks.{name}", spec, MC_TASK_KEYS[spec["kind"]])
        if spec["kind"] == "file":
            must_be_one_of(f"tasks.{name}.format", FORMATS.kind, spec.get("format", name), FORMATS.names())
        two_files = {"train", "test"} & set(spec)
        if spec["kind"] == "file" and (("path" in spec) == bool(two_files) or len(two_files) == 1
                                       or (two_files and {"test_fraction", "max_records"} & set(spec))):
            raise HarnessError(f"config error: tasks.{name}: give `path` (one labelled file, split here by "
                               f"test_fraction and max_records) or `train` and `test` (two disjoint files)")
    for name, spec in config.get("generation_tasks", {}).items():
        _check_task_keys(f"generation_tasks.{name}", spec, GENERATION_TASK_KEYS[spec["kind"]])
        missing = [k for k in ("train", "test") if k not in spec]
        if spec["kind"] == "file" and missing:
            raise HarnessError(f"config error: generation_tasks.{name}: needs a {' and a '.join(missing)} file "
                               f"(SFT trains on one; a test-only set such as Vicuna's takes Dolly's train and "
                               f"dev files, with `format: {{test: vicuna}}`)")


def _check_shapes(config: dict) -> None:
    for section in ("shapes", "sources"):
        for name, spec in config.get(section, {}).items():
            if "hidden" in spec and "heads" in spec and spec["hidden"] % spec["heads"]:
                raise HarnessError(f"config error: {section}.{name}: {spec['heads']} heads do not divide hidden "
                                   f"size {spec['hidden']}")


def _check_corpus(config: dict) -> None:
    corpus = config["corpus"]
    tc = config["tokenizer"]
    if ("path" in tc) == ("vocab_size" in tc):
        raise HarnessError("config error: tokenizer: give exactly one of `vocab_size` (train one) or `path`")
    for key in {"local": ["path"], "hub": ["dataset"]}.get(corpus["kind"], []):
        if key not in corpus:
            raise HarnessError(f"config error: corpus: kind {corpus['kind']!r} needs `{key}`")
    if corpus.get("subsets") and corpus.get("domains") != "folder":
        raise HarnessError("config error: corpus: `subsets` names folders, so it needs `domains: folder`")
    if corpus.get("domains") == "folder" and corpus["kind"] != "local":
        raise HarnessError("config error: corpus: `domains: folder` reads local folders; a hub corpus names a field")
    if corpus.get("quota") and not corpus.get("domains"):
        raise HarnessError("config error: corpus: `quota` counts tokens per domain, so it needs `domains`")
    unknown = sorted(set(corpus.get("quota") or ()) - set(corpus.get("subsets") or corpus.get("quota") or ()))
    if unknown:
        raise HarnessError(f"config error: corpus.quota: {', '.join(unknown)} not in corpus.subsets")


def _check_sources(config: dict) -> None:
    """Each source's architecture is registered and has the keys a source built here needs."""
    from harness.models.archs import adapter

    for name, spec in config["sources"].items():
        try:
            required = adapter(spec["arch"]).REQUIRED
        except HarnessError as e:
            raise HarnessError(f"config error: sources.{name}: {e}") from None
        missing = [k for k in required if k not in spec]
        if "model_path" not in spec and missing:
            raise HarnessError(f"config error: sources.{name}: a source built here needs {', '.join(missing)} "
                               f"(or give `model_path`)")
        if spec.get("tokenizer") == "own" and "model_path" not in spec:
            raise HarnessError(f"config error: sources.{name}: `tokenizer: own` needs `model_path` (a source "
                               f"trained here reads the students' tokenizer)")

def must_name(config: dict, where: str, kind: str, value: str, section: str) -> None:
    """`value` names an entry of the config's `section` (a shape, source, budget, task ...)."""
    must_be_one_of(where, kind, value, list(config.get(section, {})))


def must_be_one_of(where: str, kind: str, value: str, known: list[str]) -> None:
    if value not in known:
        raise HarnessError(f"config error: {where}: " + unknown_name_message(kind, value, known))


def must_be_method(where: str, name: str) -> None:
    """`name` is a registered method."""
    from harness.api.registry import method_names

    must_be_one_of(where, "method", name, method_names())


def must_be_row_label(config: dict, where: str, label: str) -> None:
    """`label` is the label of a `methods:` row."""
    must_be_one_of(where, "row", label, [row_label(config, r) for r in config["methods"]])


def check_sections(config: dict) -> None:
    """Each report section present passes its own file's checks (harness.workflow.report.Section)."""
    from harness.workflow.report import sections

    for key, section in sections().items():
        if key in config:
            section.check(config)


def _check_dev_sections(config: dict) -> None:
    """A `dev:` section must be computable on every task its SFT runs: multiple-choice tasks
    have no dev split and no answers for Rouge-L (`sft`, and `source_sft`, which fine-tunes
    the sources on them too); a generation file task without a dev file needs `holdout`."""
    for section in ("sft", "source_sft"):
        dev = config.get(section, {}).get("dev")
        if dev and (dev.get("metric", "rougeL") != "loss" or "holdout" not in dev):
            raise HarnessError(f"config error: {section}.dev: the multiple-choice tasks have no dev split and no "
                               f"answers to score with Rouge-L; give `metric: loss` and `holdout`")
    for section in ("sft_generation", "source_sft"):
        dev = config.get(section, {}).get("dev")
        for name, spec in config.get("generation_tasks", {}).items():
            if dev and spec["kind"] == "file" and "dev" not in spec and "holdout" not in dev:
                raise HarnessError(f"config error: generation_tasks.{name}: no dev file for {section}.dev's "
                                   f"evaluation; give one, or `{section}.dev.holdout`")


# The keys each task kind reads; any other of TASK_KEYS would be ignored, so it is refused.
TASK_KEYS = {"path", "train", "dev", "test", "answers", "format", "test_fraction", "max_records", "max_answer_chars",
             "download", "lm_eval_task", "include_path", "train_overlap"}
MC_TASK_KEYS = {"generated": set(),
                "file": {"path", "train", "test", "format", "test_fraction", "max_records", "max_answer_chars",
                         "train_overlap"},
                "lm_eval": {"lm_eval_task", "include_path", "download", "test_fraction", "max_records", "train_overlap"}}
GENERATION_TASK_KEYS = {"generated": set(), "file": {"train", "dev", "test", "answers", "format", "train_overlap"}}


def _check_task_keys(where: str, spec: dict, reads: set[str]) -> None:
    ignored = sorted((set(spec) & TASK_KEYS) - reads)
    if ignored:
        raise HarnessError(f"config error: {where}: kind {spec['kind']!r} does not read {', '.join(ignored)}")


def describe(config: dict) -> str:
    n_rows, n_shapes, n_seeds = len(config["methods"]), len(config["shapes"]), len(config["seeds"])
    return (f"profile {config['profile']}: {n_rows} rows x {n_shapes} shapes x {len(config['budgets'])} budgets "
            f"x {len(config['tasks'])} tasks x {n_seeds} seeds; rows: "
            + ", ".join(label for *_, label in rows(config)))
