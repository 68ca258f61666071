"""Nothing silently wrong: each adversarial case ends in the correct result or in one line that
names the problem and the file, with exit status 2 and no output left behind."""

import bz2
import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lm_eval
import pytest
import torch
from safetensors.torch import load_file

from harness.errors import HarnessError
from tests.conftest import REPO, assert_one_line_error, run_cli

TINY = {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}
LM_EVAL_WINOGRANDE = Path(lm_eval.__file__).parent / "tasks/winogrande/default.yaml"


@pytest.fixture(scope="module")
def student(tmp_path_factory, tokenizer_dir):
    from harness.stages import build as stages

    out = tmp_path_factory.mktemp("student") / "init"
    stages.init({"method": "scratch", "shape_name": "t", "seq_len": 32, "shape": TINY}, tokenizer_dir, 0, out)
    return out


def pretrain_cfg(lr, steps, checkpoint_every=2):
    return {"method": "scratch", "budget": 32 * 8 * steps,
            "pretrain": {"seq_len": 32, "batch_size": 8, "checkpoint_every": checkpoint_every, "log_every": 1,
                         "repeat_corpus": True,  # a run long enough to be killed mid-way outlasts the corpus
                         "optim": {"lr": lr}}}


def pretrain_args(cfg, student, tokens_file, out):
    return ["pretrain", "--cfg", json.dumps(cfg), "--init", str(student), "--tokens", str(tokens_file),
            "--seed", "0", "--out", str(out)]


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


# ---------------------------------------------------------------- 1. a work dir resumes only its own run

def test_a_killed_run_is_not_resumed_under_another_config(tmp_path, student, tokens_file):
    """Kill -9 a pre-training past a checkpoint, then change lr and shrink the budget: the rerun
    discards the old work dir (one notice) and saves exactly what a fresh run of the new config saves."""
    out = tmp_path / "pt"
    proc = subprocess.Popen([sys.executable, "-m", "harness",
                             *pretrain_args(pretrain_cfg(2e-3, 2000), student, tokens_file, out)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out.with_name("pt.work") / "state.pt"
    deadline = time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.exists() and not out.exists(), "the run was not caught between a checkpoint and its end"

    new = pretrain_cfg(2e-2, 6)
    rc, err = run_cli(*pretrain_args(new, student, tokens_file, out))
    assert rc == 0, err
    assert any(line.startswith("notice: discarding") and "pt.work" in line for line in err), err
    rc, err = run_cli(*pretrain_args(new, student, tokens_file, tmp_path / "fresh"))
    assert rc == 0, err
    resumed, fresh = load_file(out / "model.safetensors"), load_file(tmp_path / "fresh" / "model.safetensors")
    assert all(torch.equal(resumed[k], fresh[k]) for k in fresh)
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["pretrain"]["optim"]["lr"] == 2e-2 and run["tokens"] == 32 * 8 * 6


def test_after_a_nan_past_a_checkpoint_a_lower_lr_starts_afresh(tmp_path, student, tokens_file):
    """The NaN error says to lower the learning rate; resuming the diverged checkpoint would fail again."""
    out = tmp_path / "pt"
    nan = pretrain_cfg(1e30, 4, checkpoint_every=1)
    nan["pretrain"]["optim"]["grad_clip"] = 0
    rc, err = run_cli(*pretrain_args(nan, student, tokens_file, out))
    assert_one_line_error(rc, err, "loss is nan", "lower the learning rate")
    assert (out.with_name("pt.work") / "state.pt").exists()  # a checkpoint of the diverged weights
    rc, err = run_cli(*pretrain_args(pretrain_cfg(1e-3, 4, checkpoint_every=1), student, tokens_file, out))
    assert rc == 0, err
    assert any(line.startswith("notice: discarding") for line in err), err


def test_the_same_run_keeps_its_work_dir_and_another_loses_it(tmp_path, capsys):
    from harness.training.runs import open_work_dir as _open_work_dir

    out, inputs = tmp_path / "pt", {"init": tmp_path / "init"}
    inputs["init"].mkdir()
    work = _open_work_dir(out, {"lr": 1}, 0, inputs)
    (work / "state.pt").write_text("checkpoint")
    assert (_open_work_dir(out, {"lr": 1}, 0, inputs) / "state.pt").exists()  # a resume
    assert "notice" not in capsys.readouterr().err
    (inputs["init"] / "run.json").write_text("{}")  # the input was rebuilt since
    assert not (_open_work_dir(out, {"lr": 1}, 0, inputs) / "state.pt").exists()
    (work / "state.pt").write_text("checkpoint")
    assert not (_open_work_dir(out, {"lr": 2}, 0, inputs) / "state.pt").exists()
    assert not (_open_work_dir(out, {"lr": 2}, 1, inputs) / "state.pt").exists()
    assert capsys.readouterr().err.count("notice: discarding") == 3


def test_orphaned_temporary_siblings_are_removed_on_the_next_write(tmp_path):
    from harness.io import atomic_dir, atomic_write_text

    (tmp_path / ".artifact.x1.tmp").mkdir()  # what a killed extraction leaves
    (tmp_path / ".artifact.x1.tmp" / "genes.safetensors").write_bytes(b"0" * 100)
    (tmp_path / ".eval.json.x2.tmp").write_text("{")
    (tmp_path / ".other.x3.tmp").write_text("not ours")
    with atomic_dir(tmp_path / "artifact") as tmp:
        (tmp / "manifest.json").write_text("{}")
    atomic_write_text(tmp_path / "eval.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.x3.tmp", "artifact", "eval.json"]


# ---------------------------------------------------------------- 2. names never reach a shell or a path unchecked

@pytest.mark.parametrize("name", ["a;touch X;b", "../../escape", "a b", ".hidden", "x/y", "$(id)"])
def test_unsafe_names_are_refused_at_config_time(name):
    from harness.workflow.config import CONFIG_DIR, resolve
    from harness.io import read_yaml

    config = read_yaml(CONFIG_DIR / "micro.yaml")
    config["shapes"][name] = next(iter(config["shapes"].values()))
    with pytest.raises(HarnessError, match="is not safe in a path or a shell command"):
        resolve(config)


def test_an_injected_shape_name_stops_snakemake_before_any_job(tmp_path):
    diff = tmp_path / "evil.yaml"
    diff.write_text('shapes:\n  "a;touch INJECTED;b": {layers: 1, hidden: 32, ffn: 64, heads: 2}\n')
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), "-n", "reports/table1.md", "--configfile", str(REPO / "config/smoke.yaml"),
                           str(diff)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "is not safe in a path or a shell command" in proc.stderr + proc.stdout
    assert not (tmp_path / "INJECTED").exists() and not (tmp_path / "results").exists()


def test_every_path_placeholder_of_a_rule_command_is_shell_quoted():
    import re

    from harness.workflow.commands import stage_command

    command = stage_command("eval", "--models {input.models} --tasks {params.tasks}",
                            "--outs {output} --seed {wildcards.seed}")
    placeholders = re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", command)
    assert placeholders and all(p.endswith(":q") or p == "threads" for p in placeholders), placeholders
    # the interpreter comes from the environment: a command holding its path would read as changed
    # code, and rerun every job, when the checkout is run from another venv
    assert command.startswith('"${{HARNESS_PYTHON:-python}}" -m harness'), command


# ---------------------------------------------------------------- 3. every record checked before use

def write_task(folder, records, split="test"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


GOOD = {"query": "Is the sky blue?", "choices": ["no", "yes"], "gold": 1}


@pytest.mark.parametrize("bad, problem", [
    ({**GOOD, "gold": 2}, "record 2: gold 2 is not an index into its 2 choices"),
    ({**GOOD, "gold": -1}, "record 2: gold -1 is not an index"),
    ({**GOOD, "gold": True}, "record 2: gold True is not an index"),
    ({"query": "q", "choices": ["a", "b"]}, "record 2: lacks gold"),
    ({**GOOD, "choices": ["only one"]}, "record 2: choices must be a list of two or more strings"),
    ({**GOOD, "choices": ["no", ""]}, "record 2: a choice is empty"),
    ({**GOOD, "choices": ["yes", "yes"]}, "record 2: two choices are the same text"),
    (GOOD, "record 2 repeats record 1"),
])
def test_a_bad_record_anywhere_in_a_task_file_is_one_line(tmp_path, bad, problem):
    from harness.data.tasks import Task

    task = write_task(tmp_path / "boolq", [GOOD, bad])
    with pytest.raises(HarnessError, match=problem):
        Task("boolq", task).records("test")


def test_an_out_of_range_gold_stops_the_evaluation_instead_of_scoring_it_wrong(tmp_path, student):
    task = write_task(tmp_path / "boolq", [GOOD, {**GOOD, "gold": 5}])
    rc, err = run_cli("eval", "--cfg", json.dumps({"method": "scratch", "tasks": ["boolq"], "eval": {}}),
                      "--models", str(student), "--tasks", str(task), "--outs", str(tmp_path / "e.json"))
    assert_one_line_error(rc, err, str(task / "test.jsonl"), "record 2", "gold 5")
    assert not (tmp_path / "e.json").exists()


# ---------------------------------------------------------------- 4. corrupt files: one line naming the file

def test_a_truncated_student_checkpoint(tmp_path, student, tokens_file):
    import shutil

    broken = tmp_path / "init"
    shutil.copytree(student, broken)
    truncate(broken / "model.safetensors")
    rc, err = run_cli(*pretrain_args(pretrain_cfg(1e-3, 2), broken, tokens_file, tmp_path / "pt"))
    assert_one_line_error(rc, err, "corrupt or unreadable student checkpoint", str(broken))
    assert not (tmp_path / "pt").exists()


def test_a_truncated_token_file(tmp_path, student, tokens_file):
    broken = tmp_path / "tokens.npy"
    broken.write_bytes(tokens_file.read_bytes())
    truncate(broken, 0.3)
    rc, err = run_cli(*pretrain_args(pretrain_cfg(1e-3, 2), student, broken, tmp_path / "pt"))
    assert_one_line_error(rc, err, "corrupt or unreadable token file", str(broken))
    assert not (tmp_path / "pt").exists()


def test_truncated_gene_matrices(tmp_path, tokenizer_dir):
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "manifest.json").write_text(json.dumps({"weights": [], "source_layers": 1}))
    (artifact / "genes.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    cfg = {"method": "masa", "shape_name": "t", "seq_len": 32, "shape": TINY}
    rc, err = run_cli("init", "--cfg", json.dumps(cfg), "--tokenizer", str(tokenizer_dir), "--seed", "0",
                      "--artifact", str(artifact), "--out", str(tmp_path / "init"))
    assert_one_line_error(rc, err, "corrupt or unreadable gene matrices", str(artifact / "genes.safetensors"))
    assert not (tmp_path / "init").exists()


def test_a_truncated_source_checkpoint(tmp_path, student):
    import shutil

    from harness.models.sources import Source

    model = tmp_path / "model"
    shutil.copytree(student, model)
    truncate(model / "model.safetensors")
    with pytest.raises(HarnessError, match=f"source 'olmo': cannot load {model} .*corrupt or incomplete"):
        Source("olmo", "olmo", str(model)).load()


@pytest.mark.parametrize("cfg, problem", [("[1, 2]", "holds a JSON list, not an object"),
                                          ("{oops", "--cfg is not valid JSON"),
                                          ("@/no/such/file.json", "cannot read /no/such/file.json")])
def test_a_cfg_that_is_not_a_json_object(tmp_path, tokenizer_dir, cfg, problem):
    rc, err = run_cli("init", "--cfg", cfg, "--tokenizer", str(tokenizer_dir), "--seed", "0",
                      "--out", str(tmp_path / "init"))
    assert_one_line_error(rc, err, problem)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_full_disk_or_a_refused_write_is_one_line(monkeypatch, capsys, tmp_path, code):
    from harness.cli import main as cli
    from harness.stages import build as stages

    def world(cfg, out):
        raise OSError(code, os.strerror(code), str(out / "corpus.txt"))

    monkeypatch.setattr(stages, "world", world)
    assert cli.main(["world", "--cfg", "{}", "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {os.strerror(code)}: {tmp_path / 'w' / 'corpus.txt'} (nothing was left half-written)"]


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0, 1\nshapes: {}\n")
    rc, err = run_cli("validate", "--profile", str(bad))
    assert_one_line_error(rc, err, str(bad), "YAML syntax error at line 2")


def test_stage_help_names_the_options_the_rules_pass():
    proc = subprocess.run([sys.executable, "-m", "harness", "init", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert "--source SOURCE" in proc.stdout and "--artifact ARTIFACT" in proc.stdout
    assert "-opt" not in proc.stdout


# ---------------------------------------------------------------- 5. after a kill, what to type

@pytest.mark.slow
def test_after_snakemake_is_killed_unlock_then_the_same_command_works(tmp_path):
    """kill -9 leaves Snakemake's lock (it cannot clean up); the commands of docs/reliability.md recover."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-j1",
               "results/smoke/data/world", "--configfile", str(REPO / "config/smoke.yaml")]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.time() + 240
    while not (locks.is_dir() and any(locks.iterdir())) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "--unlock" in again.stderr + again.stdout
    unlock = subprocess.run([*command, "--unlock"], capture_output=True, text=True, timeout=600)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "results/smoke/data/world/run.json").is_file()
    assert not list((tmp_path / "results/smoke/data").glob(".*.tmp"))


# ---------------------------------------------------------------- 6. real evaluation files, offline

def test_lm_eval_export_fails_fast_and_in_one_line_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
    # our CaseHOLD task reads LexGLUE from the hub (and is found without indexing lm-eval's own tasks)
    cfg = {"task": "casehold", "spec": {"label": "CaseHOLD", "kind": "lm_eval"}}
    start = time.time()
    rc, err = run_cli("export-task", "--cfg", json.dumps(cfg), "--out", str(tmp_path / "casehold"), env=env)
    assert_one_line_error(rc, err, "lm-eval task 'casehold'", "not in the local Hugging Face cache", "download: true")
    assert time.time() - start < 60 and not (tmp_path / "casehold").exists()


def write_jsonl(path, rows, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    return path


HELLA = [{"activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow covering the window.",
          "ctx_b": "a person", "endings": ["[title] Cleans the car.", "sits down.", "plays  a song.", "leaves."],
          "label": "3"},
         {"activity_label": "Baking cookies", "ctx_a": "A woman puts dough on a tray.", "ctx_b": "",
          "endings": ["she bakes it.", "she eats it.", "she [step] leaves.", "it rains."], "label": 0}]


def test_hellaswag_from_a_local_file_is_lm_evals_query(tmp_path):
    import datasets
    from lm_eval.tasks.hellaswag.utils import process_docs

    from harness.data.task_files import load_task_file

    rows = [{**r, "label": str(r["label"])} for r in HELLA]
    reference = process_docs(datasets.Dataset.from_list(rows))
    ours = load_task_file(write_jsonl(tmp_path / "hellaswag_val.jsonl", HELLA), "hellaswag")
    assert ours == [{"query": d["query"], "choices": d["choices"], "gold": d["gold"]} for d in reference]


def test_hellaswag_with_ctx_only_differs_from_lm_eval_only_in_case_and_says_so(tmp_path, capsys):
    from harness.data.task_files import load_task_file

    full = load_task_file(write_jsonl(tmp_path / "a.jsonl", HELLA), "hellaswag")
    ctx_only = [{k: v for k, v in r.items() if k not in ("ctx_a", "ctx_b")}
                | {"ctx": (r["ctx_a"] + " " + r["ctx_b"]).strip()} for r in HELLA]
    caseless = {**ctx_only[0], "ctx": "Stretching: 1 2 3."}  # no letter after a space: the query is lm-eval's
    ours = load_task_file(write_jsonl(tmp_path / "b.jsonl", [*ctx_only, caseless]), "hellaswag")[:2]
    assert [r["query"].lower() for r in ours] == [r["query"].lower() for r in full]
    assert ours[0]["query"] != full[0]["query"]  # "a person" vs lm-eval's "A person"
    assert [r["choices"] for r in ours] == [r["choices"] for r in full]
    assert "2 of 3 HellaSwag records carry `ctx` without ctx_a/ctx_b, and their queries may differ" \
        in capsys.readouterr().err


def test_casehold_from_either_release_gives_the_same_records(tmp_path):
    from harness.data.task_files import load_task_file

    passage = "See Smith v. Jones, 123 F.3d 456 (2d Cir. 1999) (<HOLDING>); see also Doe."
    holdings = [f"holding that {i}" for i in range(5)]
    lexglue = write_jsonl(tmp_path / "lexglue.jsonl", [{"context": passage, "endings": holdings, "label": 3}])
    instruct = write_jsonl(tmp_path / "instruct.jsonl.gz", [{"input_text": passage, "choices": holdings,
                                                             "answer": "D"}], gzip.open)
    by_text = write_jsonl(tmp_path / "by-text.jsonl", [{"input_text": passage, "choices": holdings,
                                                         "answer": "holding that 3"}])  # the answer as the holding
    expected = [{"query": "See Smith v. Jones, 123 F.3d 456 (2d Cir. 1999) (", "choices": holdings, "gold": 3}]
    assert load_task_file(lexglue, "casehold") == load_task_file(instruct, "casehold") == expected
    assert load_task_file(by_text, "casehold") == expected


def test_casehold_instruction_release_through_our_lm_eval_yaml(tmp_path):
    """The include_path route: our CaseHOLD YAML reads the instruction release's fields too."""
    from harness.data import task_data
    from harness.io import read_jsonl
    from tests.data.test_lm_eval_export import local_task

    holdings = [f"holding that {i}" for i in range(5)]
    rows = [{"input_text": "As held in Roe, 1 U.S. 2 (<HOLDING>).", "choices": holdings, "answer": 1}]
    local_task(tmp_path, "casehold_instruct", task_data.LM_EVAL_TASKS / "casehold.yaml", rows)
    spec = {"kind": "lm_eval", "lm_eval_task": "casehold_instruct", "include_path": str(tmp_path)}
    task_data.export_task({"task": "casehold", "spec": spec}, tmp_path / "out")
    assert read_jsonl(tmp_path / "out" / "test.jsonl") == [
        {"query": "As held in Roe, 1 U.S. 2 (", "choices": holdings, "gold": 1}]


def test_compressed_files_and_json_arrays_read_like_plain_jsonl(tmp_path):
    from harness.data.task_files import load_task_file

    rows = [{"question": "is it", "passage": "It is.", "answer": True}, {"question": "is not", "passage": "No.",
                                                                         "answer": False}]
    plain = load_task_file(write_jsonl(tmp_path / "dev.jsonl", rows), "boolq")
    assert load_task_file(write_jsonl(tmp_path / "dev.jsonl.bz2", rows, bz2.open), "boolq") == plain
    assert load_task_file(write_jsonl(tmp_path / "dev.jsonl.gz", rows, gzip.open), "boolq") == plain
    (tmp_path / "dev.json").write_text(json.dumps(rows))
    assert load_task_file(tmp_path / "dev.json", "boolq") == plain


@pytest.mark.parametrize("content, problem", [
    ('{"goal": "x", "sol1": "a", "sol2": "b"}\n', "lacks the field '(passage|question)' that format 'boolq' reads"),
    ("[1, 2]", "element 0 is a JSON int, not a record"),
    (b"BZh91AY&SY\x00garbage", "cannot be read as UTF-8 text"),
])
def test_a_wrong_format_or_a_broken_file_is_one_line(tmp_path, content, problem):
    from harness.data.task_files import load_task_file

    path = tmp_path / ("dev.jsonl.bz2" if isinstance(content, bytes) else "dev.jsonl")
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(HarnessError, match=problem):
        load_task_file(path, "boolq")


def test_a_train_file_that_holds_test_items_is_refused(tmp_path):
    from harness.data import task_data

    rows = [{"question": f"q{i}", "passage": "p.", "answer": i % 2 == 0} for i in range(6)]
    train = write_jsonl(tmp_path / "train.jsonl", rows[:4])
    test = write_jsonl(tmp_path / "test.jsonl", rows[3:])
    spec = {"label": "BoolQ", "kind": "file", "format": "boolq", "train": str(train), "test": str(test)}
    with pytest.raises(HarnessError, match="1 train records are also test items"):
        task_data.export_task({"task": "boolq", "spec": spec}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    task_data.export_task({"task": "boolq", "spec": {**spec, "train_overlap": "drop"}}, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["records"] == {"train": 3, "test": 3}


def test_an_evaluation_only_lm_eval_task_is_split_here_and_only_when_asked(tmp_path):
    """A task with no train split used to train on its test set; now it needs test_fraction."""
    from harness.data import task_data
    from harness.io import read_jsonl
    from tests.data.test_lm_eval_export import WINO

    rows = [{**WINO[i % 2], "sentence": f"{i}: " + WINO[i % 2]["sentence"]} for i in range(10)]
    data = write_jsonl(tmp_path / "wino.jsonl", rows)
    (tmp_path / "wino_eval.yaml").write_text(json.dumps({
        "include": str(LM_EVAL_WINOGRANDE), "task": "wino_eval", "dataset_path": "json", "dataset_name": None, "training_split": None,
        "validation_split": "validation", "dataset_kwargs": {"data_files": {"validation": str(data)}}}))
    spec = {"kind": "lm_eval", "lm_eval_task": "wino_eval", "include_path": str(tmp_path)}
    with pytest.raises(HarnessError, match="has no train split; give `test_fraction`"):
        task_data.export_task({"task": "winogrande", "spec": spec}, tmp_path / "out")
    task_data.export_task({"task": "winogrande", "spec": {**spec, "test_fraction": 0.3}}, tmp_path / "out")
    train, test = (read_jsonl(tmp_path / "out" / f"{s}.jsonl") for s in ("train", "test"))
    assert (len(train), len(test)) == (7, 3)
    assert not {r["query"] for r in train} & {r["query"] for r in test}


def test_split_options_on_a_task_with_its_own_train_split_are_refused(tmp_path):
    from harness.data import task_data
    from tests.data.test_lm_eval_export import WINO, local_task

    local_task(tmp_path, "wino_local", LM_EVAL_WINOGRANDE, WINO)
    spec = {"kind": "lm_eval", "lm_eval_task": "wino_local", "include_path": str(tmp_path), "max_records": 10}
    with pytest.raises(HarnessError, match="has its own train split; max_records split only a task without one"):
        task_data.export_task({"task": "winogrande", "spec": spec}, tmp_path / "out")


def test_vicuna_questions_share_dollys_train_and_dev_files(tmp_path):
    from harness.data import task_data
    from harness.io import read_jsonl

    dolly = write_jsonl(tmp_path / "dolly.jsonl", [{"instruction": f"Say {i}.", "input": "", "output": f"{i}."}
                                                   for i in range(3)])
    vicuna = write_jsonl(tmp_path / "question.jsonl", [{"question_id": 1, "text": "What is tea?", "category": "x"}])
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"question_id": 1, "text": "A drink."}])
    spec = {"label": "VicunaEval", "kind": "file", "train": str(dolly), "dev": str(dolly), "test": str(vicuna),
            "answers": str(answers), "format": {"test": "vicuna"}}
    task_data.instruction_task({"task": "vicuna", "spec": spec}, tmp_path / "vicuna")
    [test] = read_jsonl(tmp_path / "vicuna" / "test.jsonl")
    assert test["instruction"] == "What is tea?" and test["output"] == ["A drink."]
    assert len(read_jsonl(tmp_path / "vicuna" / "train.jsonl")) == 3


def test_a_test_only_generation_task_is_refused_at_validation():
    from harness.workflow.config import CONFIG_DIR, resolve
    from harness.io import read_yaml

    config = read_yaml(CONFIG_DIR / "micro.yaml")
    config["generation_tasks"]["vicuna"] = {"label": "VicunaEval", "kind": "file", "test": "q.jsonl",
                                            "format": "vicuna"}
    with pytest.raises(HarnessError, match="generation_tasks.vicuna: needs a train file"):
        resolve(config)


@pytest.mark.parametrize("task, problem", [
    ({"label": "BoolQ", "kind": "lm_eval", "path": "x.jsonl"}, "kind 'lm_eval' does not read path"),
    ({"label": "BoolQ", "kind": "file", "path": "x.jsonl", "train": "t.jsonl", "test": "u.jsonl"},
     "give `path`"),
    ({"label": "BoolQ", "kind": "file", "train": "t.jsonl", "test": "u.jsonl", "test_fraction": 0.3},
     "give `path`"),
    ({"label": "BoolQ", "kind": "generated", "max_records": 10}, "kind 'generated' does not read max_records"),
    ({"label": "BoolQ", "kind": "file", "format": "boolqq", "path": "x.jsonl"},
     "unknown multiple-choice file format 'boolqq'; did you mean 'boolq'"),
])
def test_task_options_a_kind_would_ignore_are_refused(task, problem):
    from harness.workflow.config import CONFIG_DIR, resolve
    from harness.io import read_yaml

    config = read_yaml(CONFIG_DIR / "micro.yaml")
    config["tasks"]["boolq"] = task
    with pytest.raises(HarnessError, match=problem):
        resolve(config)


def test_hellaswag_through_lm_evals_own_yaml_matches_the_file_loader(tmp_path):
    """docs/data.md's include_path route: lm-eval's HellaSwag YAML over local files gives the records
    that `format: hellaswag` reads from the same file."""
    from harness.data import task_data
    from harness.data.task_files import load_task_file
    from harness.io import read_jsonl
    from tests.data.test_lm_eval_export import local_task

    rows = [{**r, "label": str(r["label"])} for r in HELLA]
    local_task(tmp_path, "hella_local", Path(lm_eval.__file__).parent / "tasks/hellaswag/hellaswag.yaml", rows)
    spec = {"kind": "lm_eval", "lm_eval_task": "hella_local", "include_path": str(tmp_path)}
    task_data.export_task({"task": "hellaswag", "spec": spec}, tmp_path / "out")
    assert read_jsonl(tmp_path / "out" / "test.jsonl") == load_task_file(tmp_path / "hella_local.jsonl", "hellaswag")


@pytest.mark.parametrize("raised", [
    RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: "
                 "file write failed"),  # torch.save on a full disk
    RuntimeError("basic_ios::clear: iostream error"),  # torch.save when the stream's flush fails
    "safetensors",
])
def test_a_full_disk_under_a_librarys_own_writer_is_one_line(monkeypatch, capsys, tmp_path, raised):
    """torch.save and safetensors write through their own code and raise their own errors, worded
    their own way, on a full disk: still one line, not their traceback. (A full disk cannot be
    made here reliably: /dev/full's error reaches torch's writer only sometimes.)"""
    from safetensors import SafetensorError

    from harness.cli import main as cli
    from harness.stages import build as stages

    def world(cfg, out):
        if raised == "safetensors":
            raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                                  '"No space left on device" })')
        raise raised

    monkeypatch.setattr(stages, "world", world)
    assert cli.main(["world", "--cfg", "{}", "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: an output could not be written: "), err


def test_a_bug_is_still_a_traceback(monkeypatch, tmp_path):
    """Only a failed write is turned into one line: any other library error stays loud."""
    from harness.cli import main as cli
    from harness.stages import build as stages

    def world(cfg, out):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(stages, "world", world)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        cli.main(["world", "--cfg", "{}", "--out", str(tmp_path / "w")])


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask):
    """An output gets the mode an ordinary write would (a group sharing a results folder can read
    it), not the private 0600/0700 of the temporary file it was written as."""
    from harness.io import atomic_dir, atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with atomic_dir(tmp_path / "d") as d:
            (d / "x").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask
