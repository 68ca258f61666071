"""`python -m harness gpu-check`: what the paper plan assumes, measured on one GPU in a few minutes
with random weights (nothing downloaded), written as one JSON file.

- the MFU and peak memory of a 12L-267M and a 16L-877M pre-training step, through the training
  loop itself (bf16 autocast, AdamW), at the micro-batch the planner chose for the paper profile;
- the peak memory of a distillation step of the 16L-877M student from a 7B teacher of OLMo-7B's
  shape in fp32 (baselines/distill.py's KL, chunked);
- the peak memory and step time of MASA's alignment on one OLMo-7B-shaped layer (bf16 weights and
  inputs, a backward per weight), and the rate of one differentiable SVD of its largest gene
  matrix (the planner's `svd_tflops`);
- the time of one decoding step of the 16L-877M student in fp32 at the paper's generation batch
  (the planner's `decode_step_ms`).
Each memory figure stands beside the planner's estimate for the same job (harness/workflow/plan.py).
It needs torch, transformers, numpy, pyyaml and jsonschema and the project's code: no lm-eval, no
Snakemake. `--tiny` runs the same code at toy sizes on any device (the test suite does, on CPU,
where no allocator peak exists and memory is left null).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from harness.errors import HarnessError
from harness.io import atomic_write_text
from harness.workflow import plan

GIB = 1024 ** 3
TINY = {"student_small": {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2},
        "student_large": {"layers": 2, "hidden": 32, "ffn": 64, "heads": 2},
        "teacher": {"layers": 2, "hidden": 48, "ffn": 96, "heads": 2},
        "masa_layer": {"layers": 1, "hidden": 48, "ffn": 130}, "vocab": 300, "seq_len": 32, "micro_batch": 2,
        "align_tokens": 64, "generation_batch": 4, "prompt": 8}


class Device:
    def __init__(self, name: str):
        self.device = torch.device(name)
        self.cuda = self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / GIB if self.cuda else None

    def timed(self, fn, repeats: int) -> float:
        """Seconds per call of `fn`, after one warm-up call."""
        fn()
        self.sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        self.sync()
        return (time.perf_counter() - start) / repeats


def _model(shape: dict, vocab: int, seq_len: int, dev: Device, dtype=torch.float32):
    from harness.models.build import build_model, student_config

    with dev.device:
        return build_model(student_config("gpu-check", shape, vocab, seq_len, None), seed=0).to(dtype)


def _memory(measured: float | None, estimate: dict[str, float]) -> dict:
    """A measured allocator peak beside the planner's estimate, which counts the CUDA context's
    overhead that the allocator does not see."""
    without = (sum(estimate.values()) - estimate.get("overhead", 0)) / GIB
    return {"measured_peak_gib": measured, "estimate_gib": without,
            "estimate_parts_gib": {k: v / GIB for k, v in estimate.items()},
            "measured_over_estimate": measured / without if measured else None}


def pretrain(name: str, shape: dict, vocab: int, seq_len: int, micro_batch: int, dev: Device, peak_tflops: float,
             repeats: int) -> dict:
    """A pre-training step through `harness.training.train.train`: one micro-batch a step."""
    from harness.data.batches import PretrainBatches
    from harness.training.train import OptimConfig, TrainSettings, train

    dev.reset()
    model = _model(shape, vocab, seq_len, dev)
    tokens = np.random.default_rng(0).integers(0, vocab, (repeats + 2) * micro_batch * seq_len + seq_len)
    settings = TrainSettings(OptimConfig(lr=1e-4), log_every=10 ** 9)

    def run(steps: int) -> None:
        train(model, PretrainBatches(tokens, seq_len, micro_batch, steps * micro_batch * seq_len, 0), settings,
              desc=f"gpu-check {name}")

    run(1)
    dev.sync()
    start = time.perf_counter()
    run(repeats)
    dev.sync()
    seconds = (time.perf_counter() - start) / repeats
    flops = plan.train_flops_per_token(shape, vocab, seq_len) * micro_batch * seq_len
    estimate = plan._training_memory(plan.llama_params(shape, vocab), shape, vocab,
                                     {"micro_batch": micro_batch, "batch_size": micro_batch}, seq_len)
    return {"shape": name, "micro_batch": micro_batch, "seq_len": seq_len, "step_seconds": seconds,
            "tflops": flops / seconds / 1e12, "mfu": flops / seconds / (peak_tflops * 1e12),
            **_memory(dev.peak_gib(), estimate)}


def distill(shape: dict, teacher_shape: dict, vocab: int, seq_len: int, micro_batch: int, chunk: int,
            dev: Device) -> dict:
    """One distillation step: the student's forward and backward with the fp32 teacher's chunked KL."""
    from baselines.distill import kd_loss

    dev.reset()
    teacher = _model(teacher_shape, vocab, seq_len, dev).eval().requires_grad_(False)
    student = _model(shape, vocab, seq_len, dev)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4)
    ids = torch.randint(0, vocab, (micro_batch, seq_len), device=dev.device)

    def step() -> None:
        with torch.no_grad():
            hidden = teacher.model(input_ids=ids).last_hidden_state
        with torch.autocast(dev.device.type, dtype=torch.bfloat16):
            logits = student(input_ids=ids).logits
        kd_loss(logits, ids, hidden, teacher.lm_head, 1.0, chunk).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds = dev.timed(step, 1)
    estimate = plan._training_memory(plan.llama_params(shape, vocab), shape, vocab,
                                     {"micro_batch": micro_batch, "batch_size": micro_batch}, seq_len)
    estimate.update(plan.distill_memory(plan.llama_params(teacher_shape, vocab), micro_batch * seq_len, vocab, chunk))
    return {"micro_batch": micro_batch, "teacher_params": plan.llama_params(teacher_shape, vocab),
            "step_seconds": seconds, **_memory(dev.peak_gib(), estimate)}


def masa(layer: dict, tokens: int, ratio: float, dev: Device, repeats: int) -> dict:
    """MASA's alignment step on one source layer's FFN: bf16 weights and inputs where the device
    has bf16 (MASA's `source_dtype: auto`), a backward per weight, Adam on the fp32 genes."""
    from methods.masa import aligned_backward, gene_rank, init_gene, log_spectrum

    dev.reset()
    dtype = torch.bfloat16 if dev.cuda else torch.float32
    h, f = layer["hidden"], layer["ffn"]
    g = torch.Generator(device=dev.device).manual_seed(0)
    weights = {k: (torch.randn(*s, generator=g, device=dev.device) * 0.02).to(dtype)
               for k, s in (("gate", (f, h)), ("up", (f, h)), ("down", (h, f)))}
    x = torch.randn(tokens, h, generator=g, device=dev.device).to(dtype)
    inputs = {"gate": x, "up": x, "down": torch.randn(tokens, f, generator=g, device=dev.device).to(dtype)}
    ranks = {k: gene_rank(w.shape[1], w.shape[0], ratio) for k, w in weights.items()}
    cpu = torch.Generator().manual_seed(0)
    genes = {k: torch.nn.Parameter(init_gene(w.float().cpu(), ranks[k], cpu).to(dev.device)) for k, w in weights.items()}
    spectra = {k: log_spectrum(w, ranks[k]) for k, w in weights.items()}
    opt = torch.optim.Adam(genes.values(), lr=1e-2)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        aligned_backward(genes, weights, spectra, inputs, 1.0)
        opt.step()

    seconds = dev.timed(step, repeats)
    peak = dev.peak_gib()
    r = max(ranks.values())
    M = torch.nn.Parameter(torch.randn(r, r, device=dev.device))

    def svd() -> None:
        torch.linalg.svdvals(M).sum().backward()

    svd_seconds = dev.timed(svd, repeats)
    options = {"ratio": ratio, "size": "ratio"}
    estimate = plan.extract_memory({**layer, "layers": 1}, 3 * h * f, 0, tokens, 2 if dev.cuda else 4, options)
    return {"layer": layer, "tokens": tokens, "ranks": ranks, "step_seconds": seconds, "svd_rank": r,
            "svd_seconds": svd_seconds, "svd_tflops": 22 * r ** 3 / svd_seconds / 1e12,
            **_memory(peak, estimate)}


def decode(shape: dict, vocab: int, batch: int, prompt: int, new_tokens: int, dev: Device) -> dict:
    """Sampled decoding of the student in fp32: milliseconds a step (the planner's `decode_step_ms`)."""
    dev.reset()
    model = _model(shape, vocab, prompt + new_tokens, dev).eval()
    ids = torch.randint(0, vocab, (batch, prompt), device=dev.device)

    def generate() -> None:
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)

    seconds = dev.timed(generate, 1)
    return {"batch": batch, "prompt_tokens": prompt, "new_tokens": new_tokens,
            "decode_step_ms": 1000 * seconds / new_tokens, "peak_gib": dev.peak_gib()}


def run(out: Path, device: str | None = None, tiny: bool = False, repeats: int = 3) -> dict:
    from harness.workflow.config import load_profile

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError("gpu-check: no CUDA device here; `--device cpu --tiny` runs the same code at toy sizes")
    dev = Device(device)
    paper = load_profile("paper")
    p = paper["plan"]
    if tiny:
        small, large, teacher, layer = TINY["student_small"], TINY["student_large"], TINY["teacher"], TINY["masa_layer"]
        vocab, seq_len, micro, align, gen_batch, prompt, new = (TINY["vocab"], TINY["seq_len"], TINY["micro_batch"],
                                                                TINY["align_tokens"], TINY["generation_batch"],
                                                                TINY["prompt"], 4)
    else:
        small, large = paper["shapes"]["12L-267M"], paper["shapes"]["16L-877M"]
        olmo = p["source_shapes"]["olmo"]
        teacher = {**olmo, "heads": 32}
        layer = {"hidden": olmo["hidden"], "ffn": olmo["ffn"]}
        vocab, seq_len, micro = p["vocab"], paper["pretrain"]["seq_len"], paper["pretrain"]["micro_batch"]
        masa_opts = paper["method_options"]["masa"]
        align = masa_opts.get("align_batch", 8) * paper["seq_len"]
        gen_batch, prompt, new = paper["generation"]["batch_size"], paper["generation"]["max_prompt_tokens"], 32
    ratio = 0.23
    report = {
        "device": torch.cuda.get_device_name(dev.device) if dev.cuda else platform.processor() or "cpu",
        "torch": torch.__version__, "tiny": tiny, "peak_tflops_assumed": p["peak_tflops"],
        "pretrain": [pretrain(n, s, vocab, seq_len, micro, dev, p["peak_tflops"], repeats)
                     for n, s in (("12L-267M", small), ("16L-877M", large))],
        "distill": distill(large, teacher, vocab, seq_len, micro, plan.distill_chunk(paper), dev),
        "masa": masa(layer, align, ratio, dev, repeats),
        "decode": decode(large, vocab, gen_batch, prompt, new, dev),
    }
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    return report
