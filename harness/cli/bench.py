"""`python -m harness bench`: student pre-training throughput against two yardsticks.

1. The GEMM bound: a training step costs ~6·N FLOPs per token (N = parameters
   that take part in matmuls, i.e. all but the input embedding), so the
   machine's measured matmul rate R caps throughput at R / (6·N) tokens/s.
   On CPUs R is measured in float32, on GPUs in bfloat16 (the dense peak the
   paper profile trains at).
2. A plain PyTorch loop on the same model: forward with labels, backward,
   AdamW step, zero_grad. The harness loop adds LR schedule, clipping,
   logging and checkpoint bookkeeping; it must not be slower.
3. With `seeds` > 1, the plain loop of that many same-shape models at once: their weights
   stacked along a new first dimension and the step vmapped over it (torch.func), each model
   on its own batches. It answers whether a job that trains every seed of a shape in one
   process would beat one job per seed.

Both loops run on identical models and batches, interleaved over rounds in one
process so that machine noise hits both alike; the best round of each counts.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch

from harness.workflow.config import load_profile
from harness.data.batches import PretrainBatches
from harness.errors import HarnessError
from harness.models.build import build_model, param_count, student_config
from harness.workflow.plan import active_flops_per_token
from harness.training.train import TrainSettings, train

ROUNDS = 3


def gemm_rate(device: torch.device, dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Sustained FLOP/s of an n x n matmul."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def _timed(step, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds that `steps` calls of `step(i)` take after `warmup` untimed ones."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        step(i)
    sync()
    return time.perf_counter() - t0


def _plain_step(model, batches: PretrainBatches, lr: float):
    """The plain loop's step `i`: forward with labels, backward, AdamW step, zero_grad."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    device = next(model.parameters()).device

    def step(i):
        batch = {k: v.to(device) for k, v in batches.batch(i).items()}
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()

    return step


def _plain_loop(model, batches: PretrainBatches, lr: float, steps: int, warmup: int) -> float:
    device = next(model.parameters()).device
    step = _plain_step(model, batches, lr)
    return steps * batches.batch_size * batches.seq_len / _timed(step, steps, warmup, device)


def op_table(model, batches: PretrainBatches, lr: float, steps: int, rows: int, warmup: int = 3) -> str:
    """Where the plain loop's step goes: its `rows` costliest operators (PyTorch's profiler, by self
    CPU time, input shapes apart) per step, and the matmuls' share of the whole."""
    from torch.profiler import ProfilerActivity, profile

    step = _plain_step(model, batches, lr)
    for i in range(warmup):
        step(i)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for i in range(steps):
            step(warmup + i)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    matmuls = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm"))
    lines = ["| operator | input shapes | calls / step | ms / step | share |", "|---|---|---:|---:|---:|"]
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:rows]:
        shapes = ", ".join(str(list(s)) for s in e.input_shapes if s)
        lines.append(f"| {e.key} | {shapes} | {e.count / steps:g} | {e.self_cpu_time_total / 1e3 / steps:.2f} | "
                     f"{e.self_cpu_time_total / total:.1%} |")
    return "\n".join(lines + ["", f"{total / 1e3 / steps:.1f} ms of operators a step; the matmuls "
                                   f"(aten::mm, addmm, bmm) {matmuls / total:.0%} of it."])


def _stacked_loop(models: list, batches: list[PretrainBatches], lr: float, steps: int, warmup: int) -> float:
    """The plain loop of `models` (one shape) as one stacked model; the trained weights are
    copied back into `models`. Tokens/s of all of them together."""
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(models)
    shell = copy.deepcopy(models[0]).to("meta")
    shell.config._attn_implementation = "eager"  # SDPA has no batching rule on CPU: vmap would loop over it

    def loss(p, b, batch):
        return functional_call(shell, (p, b), (), kwargs=batch).loss

    step_losses = vmap(loss, randomness="different")
    opt = torch.optim.AdamW(params.values(), lr=lr)  # elementwise, so one optimiser is K optimisers
    device = next(iter(params.values())).device

    def step(i):
        parts = [b.batch(i) for b in batches]
        batch = {k: torch.stack([part[k] for part in parts]).to(device) for k in parts[0]}
        step_losses(params, buffers, batch).sum().backward()  # each model's gradient is its own loss's
        opt.step()
        opt.zero_grad()

    seconds = _timed(step, steps, warmup, device)
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, value in params.items():
                model.get_parameter(name).copy_(value[k])
    return len(models) * steps * batches[0].batch_size * batches[0].seq_len / seconds


def _harness_loop(model, batches: PretrainBatches, settings: TrainSettings, steps: int, warmup: int) -> float:
    marks = {}
    train(model, batches, dataclasses.replace(settings, log_every=1, checkpoint_every=0), desc="bench",
          on_log=lambda r: marks.setdefault(r["step"], time.perf_counter()))
    return steps * batches.batch_size * batches.seq_len / (marks[warmup + steps] - marks[warmup])


def bench(profile: str, shape: str | None, steps: int, warmup: int = 3, compile: bool | str | None = None,
          seeds: int = 1, ops: int = 0) -> dict:
    """Tokens per second of the harness loop (the profile's `pretrain:` settings; `compile`
    overrides theirs) and of a plain PyTorch loop, against the GEMM-bound rate; with `seeds` > 1,
    also of the plain loop over that many seeds' models stacked into one; with `ops`, the plain
    loop's costliest operators (`op_table`). A compiled loop's compilation falls in the `warmup`
    steps, which are not timed."""
    if seeds < 1:
        raise HarnessError(f"bench: --seeds must be at least 1, not {seeds}")
    config = load_profile(profile)
    shapes = config["shapes"]
    vocab = 50280 if "path" in config["tokenizer"] else config["tokenizer"]["vocab_size"]
    if shape is None:  # the profile's largest student
        shape = max(shapes, key=lambda s: param_count(student_config(s, shapes[s], vocab, config["seq_len"])))
    if shape not in shapes:
        raise HarnessError(f"unknown shape {shape!r}; the {profile} profile has {', '.join(shapes)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    mcfg = student_config(shape, shapes[shape], vocab, config["seq_len"])
    pc = config["pretrain"]
    tokens = np.random.default_rng(0).integers(0, vocab, size=pc["seq_len"] * pc["batch_size"] * 64, dtype=np.int32)
    batches = PretrainBatches(tokens, pc["seq_len"], pc["batch_size"],
                              pc["seq_len"] * pc["batch_size"] * (warmup + steps), seed=0)
    settings = TrainSettings.from_section(pc)
    if compile is not None:
        settings = dataclasses.replace(settings, compile=compile)
    optim = settings.optim

    rate = gemm_rate(device, dtype, n=4096 if device.type == "cuda" else 1024)
    init = build_model(mcfg, seed=0).state_dict()
    n_total = sum(v.numel() for v in init.values())
    n_matmul = n_total - init["model.embed_tokens.weight"].numel()
    bound = rate / (6 * n_matmul)
    seed_batches = [dataclasses.replace(batches, seed=k) for k in range(seeds)]
    best = {"harness": 0.0, "plain": 0.0} | ({"stacked": 0.0} if seeds > 1 else {})
    for _ in range(ROUNDS):
        for name in best:
            if name == "harness":
                tps = _harness_loop(build_model(mcfg, seed=0).to(device), batches, settings, steps, warmup)
            elif name == "plain":
                tps = _plain_loop(build_model(mcfg, seed=0).to(device), batches, optim.lr, steps, warmup)
            else:
                models = [build_model(mcfg, seed=k).to(device) for k in range(seeds)]
                tps = _stacked_loop(models, seed_batches, optim.lr, steps, warmup)
            best[name] = max(best[name], tps)
    report = {"profile": profile, "shape": shape, "device": str(device), "threads": torch.get_num_threads(),
              "params": n_total, "matmul_params": n_matmul, "batch": f"{pc['batch_size']}x{pc['seq_len']}",
              "gemm_flops": rate, "bound_tokens_per_s": bound, "harness_tokens_per_s": best["harness"],
              "plain_tokens_per_s": best["plain"], "compile": settings.compile, "seeds": seeds,
              "stacked_tokens_per_s": best.get("stacked")}
    print(f"profile {profile} · shape {shape} · compile {settings.compile} · {n_total / 1e6:.2f}M params "
          f"({n_matmul / 1e6:.2f}M in matmuls) · "
          f"batch {report['batch']} · {device}, {report['threads']} thread(s)")
    print(f"{'GEMM rate':<22}{rate / 1e9:10.1f} GFLOP/s ({str(dtype).removeprefix('torch.')})")
    print(f"{'GEMM-bound limit':<22}{bound:10.0f} tokens/s  (rate / 6N)")
    for name, tps in best.items():
        label = f"{seeds} seeds stacked" if name == "stacked" else f"{name} loop"
        print(f"{label:<22}{tps:10.0f} tokens/s  {100 * tps / bound:5.1f}% of the bound")
    print(f"{'harness / plain':<22}{best['harness'] / best['plain']:10.2f}x")
    if seeds > 1:
        print(f"{'stacked / plain':<22}{best['stacked'] / best['plain']:10.2f}x  (all seeds' tokens)")
    if ops:
        print("\n" + op_table(build_model(mcfg, seed=0).to(device), batches, optim.lr, steps, ops, warmup))
    return report


def bench_moe(profile: str, steps: int, rounds: int = ROUNDS) -> str:
    """Seconds per training step of each source of `profile` (one thread, as a job runs) and, for
    a MoE, of each experts implementation, interleaved over `rounds` (the best counts); and each
    one's time per active FLOP against the dense source's. A Markdown table."""
    from harness.models.archs import EXPERTS_IMPLEMENTATIONS
    from harness.models.build import source_config

    config = load_profile(profile)
    vocab, seq_len = config["tokenizer"].get("vocab_size", 50280), config["source_training"]["seq_len"]
    batch = config["source_training"]["batch_size"]
    ids = torch.randint(0, vocab, (batch, seq_len), generator=torch.Generator().manual_seed(0))
    runs = {(name, impl) for name, spec in config["sources"].items() if "model_path" not in spec
            and "shape" not in spec for impl in (EXPERTS_IMPLEMENTATIONS if spec.get("experts") else (None,))}
    best: dict[tuple, float] = {}
    for _ in range(rounds):
        for name, impl in sorted(runs, key=str):
            spec = {**config["sources"][name], **({"experts_implementation": impl} if impl else {})}
            model = build_model(source_config(name, spec, vocab, seq_len), seed=0)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)

            def step(_, model=model, opt=opt):
                model(input_ids=ids, labels=ids).loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            seconds = _timed(step, steps, 1, torch.device("cpu")) / steps
            best[(name, impl)] = min(best.get((name, impl), float("inf")), seconds)
    dense = next((n for n, s in config["sources"].items() if (n, None) in best), None)
    per_flop = {k: v / (batch * seq_len * active_flops_per_token(config["sources"][k[0]], vocab, seq_len))
                for k, v in best.items()}
    lines = ["| source | experts implementation | s / step | active GFLOP / step | time per active FLOP vs "
             f"{dense or 'the dense source'} |", "|---|---|---|---|---|"]
    for (name, impl), seconds in sorted(best.items(), key=lambda kv: (kv[0][0], kv[1])):
        gflop = batch * seq_len * active_flops_per_token(config["sources"][name], vocab, seq_len) / 1e9
        ratio = f"{per_flop[(name, impl)] / per_flop[(dense, None)]:.2f}x" if dense else "–"
        lines.append(f"| {name} | {impl or 'dense'} | {seconds:.3f} | {gflop:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"
