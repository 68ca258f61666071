"""Will the plan fit its GPUs? Peak accelerator memory and time of the training jobs, estimated
before any job runs, against what the profile declares (`plan:` and `resources:`).

Memory of a pre-training or SFT job, in bytes:
- weights, gradients and AdamW's two moments in fp32: 16 per parameter (divided over the
  processes under `fsdp`);
- what autograd saves for the backward of one micro-batch under bf16 autocast: linear in the
  FEATURES of harness.training.memory, with ACTIVATION's coefficients, fitted to measured saved
  bytes on small shapes (`harness.training.memory.fit()`; tests/training/test_memory.py checks
  the estimate within 15 % of a fresh measurement at shapes it was not fitted on);
- for distillation: the teacher in fp32; what the KL saves for one micro-batch (KD_SAVED_BYTES per
  token and vocabulary entry, measured); the student's selected logits; one teacher-logit chunk;
- OVERHEAD for the CUDA context and the allocator.
Time of a pre-training job: 6 FLOPs per parameter per token, attention's 12 * layers * hidden *
seq_len per token, and a teacher's forward (2 per parameter per token), at `plan.mfu` of
`plan.peak_tflops` per GPU.

MASA's extraction (`extract_estimates`), per source, from the checkpoint's shape
(`plan.source_shapes`): the source's weights in its dtype; the FFN inputs of every layer and
the down projections' inputs for one alignment batch; the gene matrices with their gradients and
Adam's moments (fp32); the largest single weight's loss graph in fp32 (a backward per weight holds
one at a time); the logits of the source's forward. Its time: the source's forward and the
per-weight GEMMs at the MFU, and one differentiable SVD of each r x r gene matrix per step (~22 r^3
FLOPs) at `plan.svd_tflops`, which runs far below the GEMM peak.

Generation evaluation (`generation_estimate`): the student in fp32 with its KV cache, and its time
as decoding steps (items x seeds / batch x new tokens, `plan.generation_items`) at
`plan.decode_step_ms` each: small models decode at the kernel-launch latency, not at their FLOPs.
`python -m harness gpu-check` measures what these assume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024 ** 3
OVERHEAD = 2 * GIB  # CUDA context, cuBLAS workspace, allocator slack
# bytes saved for the backward, per feature (harness.training.memory.FEATURES), fitted on 2026-12-07 by
# `python -c "from harness.training.memory import fit; print(fit())"` on the 2-core CPU machine
ACTIVATION = {"params": 1.5212, "tokens": 120.321, "tokens_layers_hidden": 36.4359, "tokens_layers_ffn": 8.2526,
              "tokens_hidden": 10.4582, "tokens_vocab": 3.3463}


# bytes autograd saves per (token, vocabulary entry) for distillation's KL (baselines/distill.py
# kd_loss: the student's fp32 log-softmax, the teacher's probabilities and their nonzero mask),
# measured by tests/training/test_memory.py
KD_SAVED_BYTES = 9


# the method families whose pre-training runs a teacher's forward beside the student's step
DISTILLING = ("distill", "prune-distill")


def distill_chunk(config: dict) -> int:
    """The teacher-logit chunk (`method_options.distill.chunk_tokens`, else distill's default)."""
    return config.get("method_options", {}).get("distill", {}).get("chunk_tokens", 4096)


def distill_memory(teacher_params: float, tokens: int, vocab: int, chunk: int) -> dict[str, float]:
    """What distillation adds to a micro-batch of `tokens`: the fp32 teacher, what the KL saves, the
    student's selected logits and one teacher-logit chunk."""
    return {"teacher (fp32)": 4 * teacher_params, "KD loss, saved": KD_SAVED_BYTES * tokens * vocab,
            "student logits, selected (bf16)": 2 * tokens * vocab,
            "teacher logits chunk (fp32)": 3 * 4 * min(chunk, tokens) * vocab}


def llama_params(shape: dict, vocab: int) -> int:
    """A student's parameters: untied embeddings and head, q/k/v/o, gate/up/down, two norms a layer."""
    L, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    return 2 * vocab * h + L * (4 * h * h + 3 * h * f + 2 * h) + h


def matmul_params(shape: dict, vocab: int) -> int:
    """The parameters a token's forward multiplies by: the projections and the LM head (the
    embedding is a lookup, the norms are elementwise)."""
    L, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    return L * (4 * h * h + 3 * h * f) + vocab * h


def train_flops_per_token(shape: dict, vocab: int, seq_len: int) -> int:
    """Forward and backward: 6 per matmul parameter, and attention's scores and mixing, 12 * hidden
    * seq_len a layer (the causal mask's zeros counted, as a dense kernel computes them)."""
    return 6 * matmul_params(shape, vocab) + 12 * shape["layers"] * shape["hidden"] * seq_len


def active_flops_per_token(spec: dict, vocab: int, seq_len: int) -> int:
    """A source's training FLOPs per token over the weights a token passes: attention, its FFN (a
    MoE's top-k routed and shared experts and router), the LM head; x6 for forward and backward."""
    L, h, f = spec["layers"], spec["hidden"], spec["ffn"]
    per_token_ffn = 3 * h * f * (spec.get("top_k", 1) + spec.get("shared_experts", 0)) + h * spec.get("experts", 0)
    return 6 * (L * (4 * h * h + per_token_ffn) + vocab * h) + 12 * L * h * seq_len


def activation_bytes(shape: dict, vocab: int, tokens: int) -> float:
    L, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    values = {"params": llama_params(shape, vocab), "tokens": tokens, "tokens_layers_hidden": tokens * L * h,
              "tokens_layers_ffn": tokens * L * f, "tokens_hidden": tokens * h, "tokens_vocab": tokens * vocab}
    return sum(ACTIVATION[k] * v for k, v in values.items())


@dataclass(frozen=True)
class Estimate:
    rule: str
    what: str  # the class of jobs: shape, budget, method kind
    memory: dict[str, float]  # component -> bytes
    hours: float | None
    gpu_gib: float | None  # declared
    runtime_hours: float | None  # declared

    @property
    def peak_gib(self) -> float:
        return sum(self.memory.values()) / GIB

    def problems(self) -> list[str]:
        out = []
        if self.gpu_gib is not None and self.peak_gib > self.gpu_gib:
            parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in self.memory.items())
            out.append(f"{self.rule} {self.what}: needs ~{self.peak_gib:.0f} GiB of GPU memory ({parts}) but a GPU "
                       f"has {self.gpu_gib:.0f}; set `micro_batch` or more devices with `fsdp`")
        if self.hours is not None and self.runtime_hours is not None and self.hours > self.runtime_hours:
            out.append(f"{self.rule} {self.what}: needs ~{self.hours:.0f} h at the stated MFU but its runtime is "
                       f"{self.runtime_hours:.0f} h")
        return out


def _training_memory(params: int, shape: dict, vocab: int, section: dict, seq_len: int) -> dict[str, float]:
    devices = section.get("devices", 1)
    rows = section.get("micro_batch") or section["batch_size"]
    return {"weights+grads+AdamW": 16 * params / (devices if section.get("fsdp") else 1),
            "activations": activation_bytes(shape, vocab, rows * seq_len), "overhead": OVERHEAD}


def estimates(config: dict) -> list[Estimate]:
    """One estimate per class of training job the profile plans (a shape at a budget, plain or
    distilled; a shape's SFT), with the profile's declared limits beside it."""
    from harness.workflow.grid import NO_SOURCE, Grid

    plan, grid = config.get("plan", {}), Grid(config)
    vocab = plan.get("vocab") or config["tokenizer"].get("vocab_size")
    gpu = plan.get("gpu_memory_gb")

    def runtime(rule: str) -> float | None:  # hours, as the rule's `resources` declare them
        return grid.job_resources(rule).get("runtime", 0) / 60 or None

    rate = plan.get("peak_tflops", 0) * 1e12 * plan.get("mfu", 0)
    pre, seq = config["pretrain"], config["pretrain"]["seq_len"]
    teachers = sorted({s for m, s, _ in grid.rows if m in DISTILLING and s != NO_SOURCE})
    out = []
    for name, shape in config["shapes"].items():
        params = llama_params(shape, vocab)
        for budget, spec in config["budgets"].items():
            for teacher in [None, *teachers]:
                memory = _training_memory(params, shape, vocab, pre, seq)
                flops = train_flops_per_token(shape, vocab, seq) * spec["tokens"]
                what = f"{name} at {budget}"
                if teacher:
                    t_params = plan.get("source_params", {}).get(teacher)
                    if t_params is None:
                        continue
                    memory.update(distill_memory(t_params, (pre.get("micro_batch") or pre["batch_size"]) * seq, vocab,
                                                 distill_chunk(config)))
                    flops += 2 * t_params * spec["tokens"]
                    what += f", distilled from {teacher}"
                hours = flops / rate / 3600 / pre.get("devices", 1) if rate else None
                out.append(Estimate("pretrain", what, memory, hours, gpu, runtime("pretrain")))
        for section_name in ("sft", "sft_generation"):
            if section_name in config:
                section = config[section_name]
                out.append(Estimate("sft", f"{name} ({section_name})",
                                    _training_memory(params, shape, vocab, section, section["max_len"]), None, gpu,
                                    runtime("sft")))
    return out


def auto_micro_batch(config: dict, section: str) -> int:
    """`micro_batch: auto` for a training section: the largest divisor of its batch size with which
    every job of the section fits one GPU's memory (`plan.gpu_memory_gb`); the whole batch without
    a plan; 1 where nothing fits (the plan's check then names the job)."""
    batch = config[section]["batch_size"]
    gpu = config.get("plan", {}).get("gpu_memory_gb")
    if gpu is None:
        return batch
    for rows in sorted((d for d in range(1, batch + 1) if batch % d == 0), reverse=True):
        trial = {**config, section: {**config[section], "micro_batch": rows}}
        jobs = [e for e in estimates(trial) if (e.rule == "pretrain") == (section == "pretrain")
                and (section == "pretrain" or e.what.endswith(f"({section})"))]
        if all(e.peak_gib <= gpu for e in jobs):
            return rows
    return 1


def gene_rank(d_in: int, d_out: int, ratio: float) -> int:
    """MASA's r for one weight at an M/W ratio (methods/masa.py gene_rank; planning imports no torch)."""
    return max(1, round(math.sqrt(ratio * d_in * d_out)))


def aligned_ffns(shape: dict, options: dict) -> list[tuple[int, int]]:
    """(hidden, ffn width) of each FFN MASA aligns in a source of `shape`: every layer's dense FFN;
    a shared-expert MoE's shared experts (fused, `shared_experts` x `ffn`) and its dense layers
    (`dense_layers` of width `dense_ffn`); a standard MoE's `experts_per_layer` routed experts."""
    L, h, f = shape["layers"], shape["hidden"], shape["ffn"]
    dense = shape.get("dense_layers", 0)
    if not shape.get("experts"):
        return [(h, f)] * L
    if shape.get("shared_experts"):
        return [(h, shape["dense_ffn"])] * dense + [(h, f * shape["shared_experts"])] * (L - dense)
    return [(h, f)] * (L * options.get("experts_per_layer", 1))


def aligned_weights(shape: dict, options: dict) -> list[tuple[int, int]]:
    """(d_in, d_out) of every weight MASA aligns: gate, up and down of each aligned FFN."""
    return [(d_in, d_out) for hid, f in aligned_ffns(shape, options) for d_in, d_out in ((hid, f), (hid, f), (f, hid))]


def gene_ranks(weights: list[tuple[int, int]], options: dict, source_params: float) -> list[int]:
    """r of each weight under MASA's `size` reading (methods/masa.py sized_ranks, mirrored without
    torch; a test checks the two agree): ratio, rank:R, total:N or fraction:F."""
    kind, _, value = str(options.get("size", "ratio")).partition(":")
    if kind == "rank":
        return [int(float(value))] * len(weights)
    ratio = options.get("ratio", 0.23)
    if kind in ("total", "fraction"):
        total = float(value) * (1 if kind == "total" else source_params)
        ratio = total / sum(d_in * d_out for d_in, d_out in weights)
    return [gene_rank(d_in, d_out, ratio) for d_in, d_out in weights]


def masa_saved_bytes(d_in: int, d_out: int, tokens: int, r: int) -> int:
    """What autograd saves for one weight's MASA losses (fp32): the compressed input and the
    product's input, padded to whole r-blocks, the output error, and M's SVD factors. Derived from
    the code and checked against measured saved bytes (tests/training/test_memory.py)."""
    padded_in = -(-d_in // r) * r
    return 4 * tokens * padded_in + 4 * tokens * d_out + 8 * r * r


def weight_graph_bytes(d_in: int, d_out: int, tokens: int, r: int) -> int:
    """One weight's peak: its saved tensors, the backward's gradients of the two largest of them, W
    upcast to fp32 and the SVD's workspace (stated, not measured: a CPU has no allocator peak)."""
    padded_in = -(-d_in // r) * r
    return masa_saved_bytes(d_in, d_out, tokens, r) + 4 * tokens * (padded_in + d_out) + 4 * d_in * d_out + 12 * r * r


def extract_memory(shape: dict, params: float, vocab: int, tokens: int, dtype_bytes: int,
                   options: dict) -> dict[str, float]:
    """Peak bytes of one MASA alignment step (see the module docstring), by component."""
    L, h = shape["layers"], shape["hidden"]
    weights = aligned_weights(shape, options)
    ranks = gene_ranks(weights, options, params)
    graph = max(weight_graph_bytes(d_in, d_out, tokens, r) for (d_in, d_out), r in zip(weights, ranks))
    return {"source weights": params * dtype_bytes,
            "FFN inputs": tokens * (L * h + sum(f for _, f in aligned_ffns(shape, options))) * dtype_bytes,
            "genes+grads+Adam (fp32)": 16 * sum(r * r for r in ranks),
            "one weight's graph (fp32)": graph, "source logits": tokens * vocab * dtype_bytes,
            "overhead": OVERHEAD}


def extract_seconds(shape: dict, params: float, active_params: float, tokens: int, steps: int, options: dict,
                    rate: float, svd_rate: float) -> float:
    """The source's forward and each weight's loss GEMMs at `rate`; an SVD of each gene matrix
    at `svd_rate`: with vectors (~22 r^3) for the spectral loss's gradient, values only (~4 r^3)
    without it (spectral_weight 0 only logs L_spec)."""
    weights = aligned_weights(shape, options)
    ranks = gene_ranks(weights, options, params)
    gemm = 2 * active_params * tokens + sum(2 * tokens * d_in * d_out + 6 * tokens * d_in * r
                                            for (d_in, d_out), r in zip(weights, ranks))
    svd = (22 if options.get("spectral_weight", 1.0) else 4) * sum(r ** 3 for r in ranks)
    return steps * (gemm / rate + svd / svd_rate)


def extract_estimates(config: dict) -> list[Estimate]:
    """One estimate per (MASA-family method, source) extraction the profile plans."""
    from harness.api.registry import effective_options, method_spec
    from harness.workflow.report import section_rows

    plan, grid = config.get("plan", {}), _grid(config)
    shapes, params = plan.get("source_shapes", {}), plan.get("source_params", {})
    vocab = plan.get("vocab") or config["tokenizer"].get("vocab_size")
    rate = plan.get("peak_tflops", 0) * 1e12 * plan.get("mfu", 0)
    svd_rate = plan.get("svd_tflops", 0) * 1e12
    runtime = grid.job_resources("extract").get("runtime", 0) / 60 or None
    # every artifact a student of any table is built from, once: `artifacts/<method>/<source>`
    artifacts = {tuple(grid.init_inputs(m, s)["artifact"].split("/")[-2:])
                 for m, s, _ in [*grid.rows, *section_rows(config)] if "artifact" in grid.init_inputs(m, s)}
    out = []
    for owner, source in sorted(artifacts):
        if not method_spec(owner).target.endswith("masa:MASA") or source not in shapes or source not in params:
            continue  # other methods' extractions (EEP's search, LaTen's deltas) are not modelled yet
        opts = effective_options(owner, config.get("method_options", {})) or {}
        dtype_bytes = 4 if opts.get("source_dtype") == "float32" else 2
        tokens = opts.get("align_batch", 8) * config["seq_len"]
        steps = max(1, opts.get("align_tokens", 0) // tokens)
        shape = shapes[source]
        memory = extract_memory(shape, params[source], vocab, tokens, dtype_bytes, opts)
        active = plan.get("source_active_params", {}).get(source, params[source])
        hours = (extract_seconds(shape, params[source], active, tokens, steps, opts, rate, svd_rate) / 3600
                 if rate and svd_rate else None)
        out.append(Estimate("extract", f"{owner} from {source} ({steps} steps of {tokens:,} tokens)", memory, hours,
                            plan.get("gpu_memory_gb"), runtime))
    return out


def generation_estimate(config: dict) -> list[Estimate]:
    """The generation evaluation of the largest student: memory and decoding time (module docstring)."""
    plan, grid = config.get("plan", {}), _grid(config)
    items = plan.get("generation_items")
    if not items or not grid.gen_tasks:
        return []
    gen, vocab = config["generation"], plan.get("vocab") or config["tokenizer"].get("vocab_size")
    name, shape = max(config["shapes"].items(), key=lambda kv: llama_params(kv[1], vocab))
    batch, length = gen.get("batch_size", 16), gen["max_prompt_tokens"] + gen["max_new_tokens"]
    memory = {"weights (fp32)": 4 * llama_params(shape, vocab),
              "KV cache (fp32)": 4 * 2 * batch * length * shape["layers"] * shape["hidden"],
              "logits (fp32)": 4 * batch * length * vocab, "overhead": OVERHEAD}
    n = sum(items.get(t, 0) for t in grid.gen_tasks) * len(gen.get("seeds", [0]))
    steps = math.ceil(n / batch) * gen["max_new_tokens"]
    hours = steps * plan["decode_step_ms"] / 1000 / 3600 if plan.get("decode_step_ms") else None
    runtime = grid.job_resources("eval_generation").get("runtime", 0) / 60 or None
    return [Estimate("eval_generation", f"{name}: {n:,} generations, batch {batch}", memory, hours,
                     plan.get("gpu_memory_gb"), runtime)]


def source_sft_estimates(config: dict) -> list[Estimate]:
    """Each source's own fine-tuning (Table 2, the PKT table), memory only: its weights, gradients and
    AdamW state sharded over `source_sft.devices` under `fsdp`, and one micro-batch's activations at
    the source's shape (a MoE's active width standing in for the FFN: an approximation, the fitted
    coefficients being a dense Llama's). Only profiles that plan source fine-tuning (`table2`, `pkt`)."""
    plan, grid = config.get("plan", {}), _grid(config)
    if not ({"table2", "pkt"} & set(config)) or "source_sft" not in config:
        return []
    vocab = plan.get("vocab") or config["tokenizer"].get("vocab_size")
    runtime = grid.job_resources("source_sft").get("runtime", 0) / 60 or None
    out = []
    for source, shape in plan.get("source_shapes", {}).items():
        if source not in plan.get("source_params", {}) or source not in config["sources"]:
            continue
        active = {**shape, "heads": 1, "ffn": shape["ffn"] * (shape.get("top_k", 0) + shape.get("shared_experts", 0) or 1)}
        for section_name in ("sft", "sft_generation"):
            if section_name in config:
                section = {**config[section_name], **config["source_sft"]}
                memory = _training_memory(int(plan["source_params"][source]), active, vocab, section,
                                          section["max_len"])
                out.append(Estimate("source_sft", f"{source} ({section_name}, {section.get('devices', 1)} GPUs)",
                                    memory, None, plan.get("gpu_memory_gb"), runtime))
    return out


def _grid(config: dict):
    from harness.workflow.grid import Grid

    return Grid(config)


def problems(config: dict) -> list[str]:
    """One line per class of job that does not fit what the profile declares; none without `plan:`."""
    if "plan" not in config:
        return []
    from harness.workflow.grid import Grid

    out = []
    for rule, section in (("pretrain", config["pretrain"]), ("source_sft", config.get("source_sft", {}))):
        asked, devices = Grid(config).job_resources(rule).get("gpu", 0), section.get("devices", 1)
        if asked < devices:
            out.append(f"{rule}: its jobs run on {devices} devices (`{rule}.devices`) but ask the scheduler for "
                       f"{asked} GPU(s) (`resources.{rule}.gpu`)")
    return out + [p for e in all_estimates(config) for p in e.problems()]


def all_estimates(config: dict) -> list[Estimate]:
    return [*estimates(config), *extract_estimates(config), *generation_estimate(config),
            *source_sft_estimates(config)]


def refusal(config: dict) -> str | None:
    """The one-line error a plan that does not fit stops with, or None."""
    found = problems(config)
    if not found:
        return None
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return (f"the plan does not fit its GPUs: {found[0]}{more}; `python -m harness plan --profile "
            f"{config['profile']}` lists every job")


def table(config: dict) -> str:
    """`python -m harness plan`: every estimate against its limits, as a Markdown table."""
    rows = ["| rule | jobs of | peak GPU memory (GiB) | largest part (GiB) | time (h) | fits |",
            "|---|---|---|---|---|---|"]
    for e in all_estimates(config):
        fits = "**no**" if e.problems() else "yes"
        hours = f"{e.hours:.1f}" if e.hours is not None else "–"
        part, size = max(e.memory.items(), key=lambda kv: kv[1])
        rows.append(f"| {e.rule} | {e.what} | {e.peak_gib:.1f} | {part} {size / GIB:.1f} | {hours} | {fits} |")
    plan = config.get("plan", {})
    micro = ", ".join(f"{name} {config[name].get('micro_batch') or config[name]['batch_size']} of "
                      f"{config[name]['batch_size']}" for name in ("pretrain", "sft", "sft_generation") if name in config)
    head = (f"Profile `{config['profile']}` (micro-batches: {micro}): a GPU of {plan.get('gpu_memory_gb', '?')} GiB at "
            f"{plan.get('mfu', '?')} MFU of {plan.get('peak_tflops', '?')} TFLOP/s, differentiable SVDs at "
            f"{plan.get('svd_tflops', '?')} TFLOP/s, {plan.get('decode_step_ms', '?')} ms a decoding step "
            "(harness/workflow/plan.py). Multiple-choice evaluation is not estimated: one forward of the student, "
            "far inside both.\n\n")
    return head + "\n".join(rows) + "\n"
