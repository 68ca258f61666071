"""The warm fork server: a stage run through it writes what a cold process writes, one-line
errors and exit statuses come back, a caller's signal (or its death) ends its child, and a
caller that finds no server runs cold."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.workflow import forkserver
from tests.conftest import REPO, assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("forkserver") / "server.log"
    proc = forkserver.start(log)
    assert proc is not None, log.read_text()
    path = os.environ.pop(forkserver.ENV)  # only the commands below use it, not the rest of this worker
    yield {**os.environ, forkserver.ENV: path}, log
    os.environ[forkserver.ENV] = path
    forkserver.stop(proc)
    assert not os.path.exists(path)


def _gone(pid: int, seconds: float) -> bool:
    """Whether process `pid` ends within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _children(log, word):
    """The pids the server forked for commands holding `word`."""
    return [int(line.split(":")[0].split()[1]) for line in log.read_text().splitlines()
            if line.startswith("pid ") and word in line]


def test_a_stage_through_the_server_writes_what_a_cold_process_writes(server, tmp_path, tokenizer_dir):
    env, log = server
    cfg = json.dumps({"method": "scratch", "shape_name": "t", "shape": {"layers": 1, "hidden": 16, "ffn": 32,
                                                                        "heads": 2}, "seq_len": 32})
    outs = {}
    for name, run_env in (("warm", env), ("cold", None)):
        outs[name] = tmp_path / name
        rc, err = run_cli("init", "--cfg", cfg, "--tokenizer", str(tokenizer_dir), "--seed", "3", "--out",
                          str(outs[name]), env=run_env)
        assert rc == 0, err
    assert len(_children(log, str(outs["warm"]))) == 1 and not _children(log, str(outs["cold"]))
    assert (outs["warm"] / "model.safetensors").read_bytes() == (outs["cold"] / "model.safetensors").read_bytes()
    records = [json.loads((outs[n] / "run.json").read_text()) for n in ("warm", "cold")]
    assert records[0]["config"] == records[1]["config"] and records[0]["seed"] == records[1]["seed"] == 3


def test_errors_and_exit_statuses_come_back(server, tmp_path):
    env, log = server
    rc, err = run_cli("world", "--cfg", "[1]", "--out", str(tmp_path / "x"), env=env)
    assert_one_line_error(rc, err, "--cfg holds a JSON list, not an object")
    assert _children(log, str(tmp_path / "x"))  # it was the server's child that said so
    rc, err = run_cli("no-such-stage", env=env)
    assert rc == 2 and "invalid choice" in err[-1]  # argparse's own exit status


@pytest.mark.parametrize("how", ["signal", "death"])
def test_a_callers_signal_or_death_ends_its_child(server, how):
    env, log = server
    marker = f"--steps {10**8 + ['signal', 'death'].index(how)}"  # a run that would take days
    caller = subprocess.Popen([sys.executable, "-m", "harness", "bench", "--profile", "smoke", *marker.split()],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _children(log, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    (child,) = _children(log, marker)
    time.sleep(1.0)
    if how == "signal":
        caller.send_signal(signal.SIGTERM)
        assert caller.wait(timeout=60) == 128 + signal.SIGTERM
    else:
        caller.kill()
        caller.wait(timeout=60)
    assert _gone(child, seconds=30), f"the server's child {child} outlived its caller"


def test_without_a_reachable_server_a_command_runs_itself(tmp_path):
    env = {**os.environ, forkserver.ENV: str(tmp_path / "no-socket")}
    proc = subprocess.run([sys.executable, "-m", "harness", "validate", "--profile", "smoke"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith("profile smoke:"), proc.stderr


def test_a_server_whose_starter_is_gone_stops(tmp_path):
    """Snakemake killed while its server was still importing torch: the server must not stay."""
    path = tmp_path / "socket"
    starter = subprocess.run([sys.executable, "-c", (
        "import os, subprocess, sys; p = subprocess.Popen([sys.executable, '-m', 'harness', 'serve', '--socket', "
        f"{str(path)!r}, '--parent', str(os.getpid())], start_new_session=True, stderr=subprocess.DEVNULL); "
        "print(p.pid)")], cwd=REPO, capture_output=True, text=True, timeout=60)
    server = int(starter.stdout)
    if not _gone(server, seconds=300):  # it imports torch first
        os.kill(server, signal.SIGKILL)
        pytest.fail("the server outlived the process that started it")
    assert not path.exists()


def test_the_entry_point_and_the_light_stages_do_not_import_torch():
    """A report job, a validation and a forwarded command stay light: the CLI, the stages module
    and the fork server's client import torch only where a stage computes."""
    code = ("import sys; import harness.cli.main, harness.stages.build, harness.stages.evaluate, harness.workflow.forkserver; "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def _bench_child(env, log, steps: int):
    """A caller running a days-long bench through the server, and the server's child for it."""
    marker = f"--steps {steps}"
    caller = subprocess.Popen([sys.executable, "-m", "harness", "bench", "--profile", "smoke", *marker.split()],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _children(log, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    (child,) = _children(log, marker)
    time.sleep(1.0)
    return caller, child


def test_a_stage_killed_by_a_signal_says_so(server):
    """What the OOM killer does (SIGKILL to the stage) leaves a reason in the job's log."""
    env, log = server
    caller, child = _bench_child(env, log, 10**8 + 7)
    os.kill(child, signal.SIGKILL)
    assert caller.wait(timeout=60) == 128 + signal.SIGKILL
    err = caller.stderr.read().strip().splitlines()
    assert err[-1] == "error: `bench` was killed by signal 9 (SIGKILL: out of memory?)", err


def test_a_stage_dies_with_its_server(tmp_path):
    """A server killed outright (its Snakemake gone) takes its running stages with it: none runs
    on to write outputs a later run would accept."""
    log = tmp_path / "server.log"
    proc = forkserver.start(log)
    assert proc is not None, log.read_text()
    env = {**os.environ, forkserver.ENV: os.environ.pop(forkserver.ENV)}
    try:
        caller, child = _bench_child(env, log, 10**8 + 8)
        proc.kill()
        assert _gone(child, seconds=30), f"the stage {child} outlived its fork server"
        caller.wait(timeout=60)
    finally:
        forkserver.stop(proc)


# what a forked job must not import itself: the server's preload holds them (seconds each)
HEAVY = ("transformers.modeling_utils", "torch.distributed.fsdp", "torch._dynamo", "sympy", "accelerate",
         "lm_eval.evaluator", "lm_eval.models.huggingface", "datasets", "transformers.models.llama.modeling_llama")


def test_a_forked_job_imports_next_to_nothing_itself(tmp_path, world_dir, tokenizer_dir, tokens_file):
    """After the server's preload, a pre-training and an evaluation of the untrained student (model
    building, training, lm-eval's scoring) import no heavy module: a forked child starts working at
    once. Run in a fresh interpreter, as the server is."""
    shape = {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}
    pretrain = {"method": "scratch", "method_options": {}, "shape_name": "t", "shape": shape, "seq_len": 32,
                "budget": 512, "budget_name": "b", "pretrain": {"seq_len": 32, "batch_size": 4, "optim": {"lr": 1e-3}}}
    untrained = {"method": "scratch", "method_options": {}, "shape_name": "t", "shape": shape, "seq_len": 256,
                 "seed": 0, "tasks": ["boolq"], "eval": {"batch_size": 16}, "stage": "untrained"}
    stages = [["pretrain", "--cfg", json.dumps(pretrain), "--tokenizer", str(tokenizer_dir), "--tokens", str(tokens_file),
               "--seed", "0", "--out", str(tmp_path / "pretrain")],
              ["eval-untrained", "--cfg", json.dumps(untrained), "--tokenizer", str(tokenizer_dir), "--seed", "0",
               "--tasks", str(world_dir / "tasks" / "boolq"), "--outs", str(tmp_path / "boolq.json")]]
    code = ("import importlib, json, sys\n"
            "from harness.workflow.forkserver import PRELOAD\n"
            "for name in PRELOAD: importlib.import_module(name)\n"
            "before = set(sys.modules)\n"
            "from harness.cli.main import main\n"
            f"for argv in {stages!r}:\n"
            "    assert main(['--threads', '1', *argv]) == 0\n"
            "print(json.dumps(sorted(set(sys.modules) - before)))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = json.loads(proc.stdout.splitlines()[-1])
    assert (tmp_path / "pretrain" / "model.safetensors").is_file() and (tmp_path / "boolq.json").is_file()
    assert not [m for m in new if m.startswith(HEAVY)], new
    assert len(new) < 150, new  # 56 for these stages when written (scipy.io, tokenizers.trainers, ...)
