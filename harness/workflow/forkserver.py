"""A warm process that forks each stage, so that a job does not pay torch's import.

A micro job's own work is a second or two; importing torch, transformers and lm-eval
is 5-7 s on the 2-core machine, over half of a cold Table 1 (docs/measurements/). `python -m
harness serve --socket PATH` imports them once and then, for every `python -m harness
...` that finds `HARNESS_FORK_SERVER=PATH` in its environment, forks a child that runs
the command with the caller's arguments, working directory, environment and standard
streams (passed over the socket), and reports its exit status back. The caller is a thin
client: it forwards SIGINT/SIGTERM/SIGHUP to the child's process group, and a caller
killed outright takes its child with it (the server sees the connection close). A caller
that cannot reach the server runs the command itself, so a job on another machine (a
cluster node) simply runs as before.

The server forks from one thread and never runs a tensor operation, so no thread pool
(OpenMP's, tqdm's monitor) exists in it to be broken by fork, and CUDA is never
initialised in it; `serve` checks both. Snakemake starts one for a local run on Linux
(`fork_server`, `onstart` in the Snakefile) and stops it at the end; the server also
stops by itself once that Snakemake is gone.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

ENV = "HARNESS_FORK_SERVER"
# What the jobs import, so that none pays for it. transformers and lm-eval import lazily: the
# packages alone leave a job to import `transformers.modeling_utils` (torch.distributed, accelerate,
# sympy: 1,500 modules; 1.75 s on an idle core, 8.9 s beside a run's four jobs) and `lm_eval.evaluator`
# (0.64 s, 3.1 s) itself (docs/measurements/2026-12-07-jobs-against-their-floor.md); tests/workflow/test_forkserver.py
# checks that a job's stages import next to nothing after these.
PRELOAD = ("torch", "transformers", "transformers.modeling_utils", "lm_eval", "lm_eval.evaluator",
           "lm_eval.models.huggingface", "datasets", "evals.generation", "evals.multiple_choice", "harness.cli.main",
           "harness.stages.build", "harness.stages.evaluate", "harness.training.train", "harness.training.runs",
           "harness.models.build", "harness.api.registry",
           # the built-in architectures' model classes (harness/models/archs)
           "transformers.models.llama.modeling_llama", "transformers.models.olmo.modeling_olmo",
           "transformers.models.olmoe.modeling_olmoe", "transformers.models.ernie4_5_moe.modeling_ernie4_5_moe",
           "torch.utils.tensorboard")  # every training job writes its curves: 0.16 s of import each
_HEADER = struct.Struct("!I")


def _send(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    payload = _HEADER.pack(len(data)) + data
    sent = socket.send_fds(sock, [payload], list(fds)) if fds else 0
    sock.sendall(payload[sent:])  # a long --cfg may not go in one message


def _recv(sock: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message (None when the peer closed the connection) and the descriptors sent with it."""
    if with_fds:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, with_fds)
    else:
        data, fds = sock.recv(1 << 16), []
    if not data:
        return None, fds
    (n,) = _HEADER.unpack(data[:_HEADER.size])
    data = data[_HEADER.size:]
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            return None, fds
        data += more
    return json.loads(data), fds


# ---------------------------------------------------------------- client

def run_via_server(argv: list[str]) -> int | None:
    """Run `python -m harness ARGV` in a child of the server named by $HARNESS_FORK_SERVER;
    None when there is no server to reach (the caller then runs it itself)."""
    path = os.environ.get(ENV)
    if not path or "WORLD_SIZE" in os.environ:  # torch.distributed.run's processes start on their own
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    env = {k: v for k, v in os.environ.items() if k != ENV}  # the child's own subprocesses start cold
    _send(sock, {"argv": argv, "cwd": os.getcwd(), "env": env}, [0, 1, 2])
    started, _ = _recv(sock)
    if started is None:
        print("error: the harness fork server closed the connection", file=sys.stderr)
        return 1
    pid = started["pid"]

    def forward(signum, frame):
        _signal(pid, signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, forward)
    done, _ = _recv(sock)  # a forwarded signal interrupts nothing: the call resumes (PEP 475)
    if done is None:
        print("error: the harness fork server stopped while running this command", file=sys.stderr)
        return 1
    if "signal" in done:  # the child cannot say it was killed: its caller does (the OOM killer sends 9)
        print(f"error: {_stage(argv)} was killed by signal {done['signal']} ({_signal_name(done['signal'])})",
              file=sys.stderr)
    return done["status"]


def _stage(argv: list[str]) -> str:
    """The stage an argv runs (`python -m harness [--threads N] STAGE ...`)."""
    words = iter(argv)
    for word in words:
        if word == "--threads":
            next(words, None)
        elif not word.startswith("-"):
            return f"`{word}`"
    return "the command"


def _signal_name(signum: int) -> str:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return "an unknown signal"
    return f"{name}: out of memory?" if signum == signal.SIGKILL else name


# ---------------------------------------------------------------- server

def _signal(pid: int, signum: int) -> None:
    """Signal a child's process group (the child itself, if it has not made its group yet)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signum)
            return
        except ProcessLookupError:
            continue


def _die_with(server_pid: int | None) -> None:
    """Have the kernel kill this child when the server dies (Linux's parent-death signal): a stage
    must not run on, and write outputs a later run would accept, after the run that started it
    is gone. Where the call does not exist, the child keeps running as before."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if server_pid is not None and os.getppid() != server_pid:  # the server died before the call
        os._exit(128 + signal.SIGKILL)


def _child(request: dict, fds: list[int], server_sockets: list, run: Callable[[list[str]], int]) -> None:
    """In the forked child: become the caller's process, run the command (`run(argv)`, the CLI's
    `main`), exit with its status."""
    status = 1
    try:
        for sock in server_sockets:  # the other callers must see EOF when the server goes, not when we do
            sock.close()
        os.setsid()  # its own process group: the caller's signals reach it and what it starts
        _die_with(request.get("server_pid"))
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own: KeyboardInterrupt
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin, sys.stdout, sys.stderr = (os.fdopen(i, mode, closefd=False, buffering=1 if i else -1)
                                             for i, mode in ((0, "r"), (1, "w"), (2, "w")))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["harness", *request["argv"]]
        status = run(request["argv"])
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # a bug: the traceback, as a normal run would print it
        traceback.print_exc()
        status = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


def serve(path: str, run: Callable[[list[str]], int], parent: int | None = None) -> None:
    """Preload, listen on `path` and fork a child per request, which calls `run(argv)` (the CLI's
    `main`, handed over by the `serve` stage), until SIGTERM/SIGINT or until the process that
    started it (`parent`, Snakemake; by default the one that did) is gone, however it went, even
    before this one got here."""
    import importlib

    parent = parent or os.getppid()
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # asking for GPUs must not initialise CUDA
    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    if threading.active_count() != 1 or torch.cuda.is_initialized():
        raise RuntimeError(f"fork server: {threading.active_count()} threads, CUDA initialised: "
                           f"{torch.cuda.is_initialized()} after the imports; a forked child would inherit them")
    # the preload's ~450k objects out of the collector's reach: a child's full collection would walk
    # them all (1.1-1.8 s each, measured) and, touching them, copy the pages it shares with this process
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *a: stopping.append(True))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}  # pid -> the caller's connection
    print(f"harness fork server: listening on {path}", file=sys.stderr, flush=True)
    try:
        while not stopping and os.getppid() == parent:
            for key, _ in sel.select(timeout=0.1):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    request, fds = _recv(conn, with_fds=3)
                    if request is None or len(fds) != 3:
                        for fd in fds:
                            os.close(fd)
                        conn.close()
                        continue
                    server_pid = os.getpid()
                    pid = os.fork()
                    if pid == 0:
                        request["server_pid"] = server_pid
                        _child(request, fds, [listener, conn, *children.values(), sel], run)
                    for fd in fds:
                        os.close(fd)
                    print(f"pid {pid}: {_brief(request['argv'])}", file=sys.stderr, flush=True)
                    children[pid] = conn
                    _send(conn, {"pid": pid})
                    sel.register(conn, selectors.EVENT_READ, pid)
                else:  # a caller's connection readable: it went away, so its child goes too
                    _signal(key.data, signal.SIGTERM)
                    sel.unregister(key.fileobj)
            _reap(children, sel)
    finally:
        for pid in children:
            _signal(pid, signal.SIGTERM)
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
        if os.path.basename(os.path.dirname(path)).startswith("harness-"):  # start()'s folder, if it was
            try:
                os.rmdir(os.path.dirname(path))
            except OSError:
                pass


def _brief(argv: list[str]) -> str:
    """A command line for the log, each (long) --cfg value cut short."""
    return " ".join(a[:40] + "…" if i and argv[i - 1] == "--cfg" and len(a) > 40 else a for i, a in enumerate(argv))


def _reap(children: dict[int, socket.socket], sel: selectors.BaseSelector) -> None:
    """Send each finished child's exit status to its caller (128 + N for a signal N)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        try:
            _send(conn, {"status": code} if code >= 0 else {"status": 128 - code, "signal": -code})
        except OSError:
            pass
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()


# ---------------------------------------------------------------- for the Snakefile

def start(log: str | Path, timeout: float = 300.0) -> subprocess.Popen | None:
    """Start a server for this run and name it in this process's environment, which the jobs
    inherit; None (and a notice) if it does not come up, and the jobs start cold."""
    import tempfile

    path = os.path.join(tempfile.mkdtemp(prefix="harness-"), "socket")  # short: Unix socket paths are <108 bytes
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "harness", "serve", "--socket", path, "--parent",
                                 str(os.getpid())], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            probe.close()  # the server reads an empty request and drops it
            os.environ[ENV] = path
            return proc
        except OSError:
            probe.close()
            time.sleep(0.2)
    proc.kill()
    print(f"harness fork server did not start (see {log}); jobs start cold", file=sys.stderr)
    return None


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a server `start` started (its children, jobs of this run, are finished by now)."""
    if proc is None:
        return
    path = os.environ.pop(ENV, None)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if path:
        import shutil

        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
