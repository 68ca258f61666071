"""Will the plan fit its GPUs? Peak accelerator memory and time of the training jobs, estimated
before any job runs, against what the profile declares (`plan:` and `resources:`).

Memory of a pre-training or SFT job, in bytes:
- weights, gradients and AdamW's two moments in fp32: 16 per parameter (divided over the
  processes under `fsdp`);
- what autograd saves for the backward of one micro-batch under bf16 autocast: linear in the
  FEATURES of harness.training.memory, with ACTIVATION's coefficients, fitted to measured saved
  bytes on small shapes (`harness.training.memory.fit()`; tests/training/test_memory.py checks
  the estimate within 15 % of a fresh measurement at shapes it was not fitted on);
- for distillation: the teacher in fp32 and its and the student's logits for one micro-batch
  (fp32 and bf16);
- OVERHEAD for the CUDA context and the allocator.
Time of a pre-training job: 6 FLOPs per parameter per token, attention's 12 * layers * hidden *
seq_len per token, and a teacher's forward (2 per parameter per token), at `plan.mfu` of
`plan.peak_tflops` per GPU. Extraction and evaluation jobs are not estimated (listed as such).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024 ** 3
OVERHEAD = 2 * GIB  # CUDA context, cuBLAS workspace, allocator slack
# bytes saved for the backward, per feature (harness.training.memory.FEATURES), fitted on 2026-12-07 by
# `python -c "from harness.training.memory import fit; print(fit())"` on the 2-core CPU machine
ACTIVATION = {"params": 1.5212, "tokens": 120.321, "tokens_layers_hidden": 36.4359, "tokens_layers_ffn": 8.2526,
              "tokens_hidden": 10.4582, "tokens_vocab": 3.3463}


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
    teachers = sorted({s for m, s, _ in grid.rows if m in ("distill", "prune-distill") and s != NO_SOURCE})
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
                    rows = pre.get("micro_batch") or pre["batch_size"]
                    memory["teacher (fp32)"] = 4 * t_params
                    memory["logits (teacher fp32, student bf16)"] = rows * seq * vocab * (4 + 2 + 2)
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
    return out + [p for e in estimates(config) for p in e.problems()]


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
    rows = ["| rule | jobs of | peak GPU memory (GiB) | of which activations | time (h) | fits |",
            "|---|---|---|---|---|---|"]
    for e in estimates(config):
        fits = "**no**" if e.problems() else "yes"
        hours = f"{e.hours:.1f}" if e.hours is not None else "–"
        rows.append(f"| {e.rule} | {e.what} | {e.peak_gib:.1f} | {e.memory['activations'] / GIB:.1f} | {hours} | "
                    f"{fits} |")
    plan = config.get("plan", {})
    head = (f"Profile `{config['profile']}`: a GPU of {plan.get('gpu_memory_gb', '?')} GiB at "
            f"{plan.get('mfu', '?')} MFU of {plan.get('peak_tflops', '?')} TFLOP/s (harness/workflow/plan.py). "
            "Extraction and evaluation jobs are not estimated.\n\n")
    return head + "\n".join(rows) + "\n"
