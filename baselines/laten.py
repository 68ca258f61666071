"""LaTen, Locate-Then-Align (Tan et al., ACL 2025, "Neural Incompatibility"): the source's
most task-relevant neurons, translated by a small hypernetwork into the student's width and
added to the student's own most relevant neurons before any fine-tuning (docs/methods.md).

- Locate: static attribution through the logit lens (`harness.models.neurons.attribute`) on one
  example at a time. Attention and FFN layers are ranked separately; the source keeps its
  top L_student of each, in depth order, the i-th paired with student layer i. In each layer
  the top `neuron_fraction` of neurons are kept, both counts from the student's dimensions.
- Extract: up_proj rows and down_proj columns of the FFN neurons, v_proj rows and o_proj
  columns of the attention neurons (modules a source lacks, like DeepSeek's v_proj, are skipped).
- Align: one 2-layer MLP (ReLU, no bias, weights N(0, 1e-5)) per module type maps each
  source neuron vector to the student's width. Step s uses extract example s: the translated
  vectors are added at the student's own top neurons (its attribution of the same example),
  and the loss is summed over `align_batch` sequences (s plus random align examples) of the
  response-only CE plus `mse_weight` times the translated vectors' MSE to zero. Both LLMs
  stay frozen; only the hypernetwork trains, in the shared training loop (AdamW with the
  paper's lr 3e-5, weight decay 0.05, betas (0.9, 0.95)).
- Inject: the trained hypernetwork translates a held-out train example's neurons and the
  delta is folded into the student's weights, which are what the stage saves (the reference
  keeps it in an attribute that `save_pretrained` drops).

Differences from the reference, on purpose: an attention neuron's activation is the full
attention-weighted value (the o_proj input), so the neurons of a layer sum to its attention
output, where the reference uses the last key position only; the lens divides by the final
norm's own scale, where the reference divides by its square root; the learning-rate schedule
is the shared loop's warm-up + cosine rather than OneCycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from harness.models.archs import attention_weights
from harness.data.batches import IGNORE, collate, encode_pair, sft_pairs
from harness.errors import HarnessError
from harness.api.method import frozen_source, resolve_options
from harness.models.neurons import Attribution, attention_value_rows, attribute, model_pools, top_layers, top_neurons

DEFAULTS = {
    "extract_examples": 20,   # the reference's extract set; one alignment step each
    "align_examples": 80,
    "align_batch": 16,        # sequences per step: the extract example + 15 align examples
    "neuron_fraction": 0.1,
    "lr": 3.0e-5,
    "weight_decay": 0.05,
    "mse_weight": 1000.0,
    "max_len": 1024,
    "modules": ["up", "down", "v", "o"],
}
FFN_MODULES, ATTN_MODULES = ("up", "down"), ("v", "o")
STRIP = '."),]\n '  # trailing characters dropped before taking the attributed answer token


def splits(records: list[dict], n_extract: int, n_align: int) -> tuple[list[dict], list[dict], dict]:
    """(extract, align, inject): disjoint fixed draws from the task's train records."""
    need = n_extract + n_align + 1
    if len(records) < need:
        raise HarnessError(f"laten: the task has {len(records)} train records; extract + align + 1 inject "
                           f"example need {need}")
    order = np.random.default_rng(0).permutation(len(records))
    chosen = [records[i] for i in order[:need]]
    return chosen[:n_extract], chosen[n_extract:need - 1], chosen[-1]


def attribution_example(tokenizer, pair: tuple[str, str]) -> tuple[list[int], int]:
    """(context ids, answer token): the last token of the response with trailing punctuation
    and spaces removed, predicted from everything before it."""
    prompt, response = pair
    stripped = response.rstrip(STRIP) or response
    p, r = encode_pair(tokenizer, prompt, stripped)
    ids = p + r
    if len(ids) < 2:
        raise HarnessError("laten: an example encodes to fewer than two tokens")
    return ids[:-1], ids[-1]


@dataclass
class Selection:
    """One model's kept layers and, per kept layer, its kept neurons, for one example."""

    ffn_layers: list[int]
    attn_layers: list[int]
    ffn: list[Tensor]  # per kept FFN layer: neuron indices (k_ffn,)
    attn: list[Tensor]  # per kept attention layer: neuron indices (k_attn,)


def select(att: Attribution, n_layers: int, k_ffn: int, k_attn: int) -> Selection:
    ffn_layers, attn_layers = top_layers(att.ffn_layer, n_layers), top_layers(att.attn_layer, n_layers)
    return Selection(ffn_layers, attn_layers, [top_neurons(att.ffn[l], k_ffn) for l in ffn_layers],
                     [top_neurons(att.attn[l], k_attn) for l in attn_layers])


def source_vectors(source, pools: list[dict[str, Tensor]], sel: Selection, modules: list[str]) -> dict[str, Tensor]:
    """{module: (L_student, k, H_source)}: each kept neuron's vector in the source's hidden space
    (`pools`: the source's `model_pools`)."""
    out = {}
    if "up" in modules:
        out["up"] = torch.stack([pools[l]["up"][idx] for l, idx in zip(sel.ffn_layers, sel.ffn)])
    if "down" in modules:
        out["down"] = torch.stack([pools[l]["down"][:, idx].T for l, idx in zip(sel.ffn_layers, sel.ffn)])
    attn = [(source.model.layers[l].self_attn, attention_weights(source, l)) for l in sel.attn_layers]
    if "v" in modules and all("v_proj" in w for _, w in attn):
        rows = [attention_value_rows(a, w["o_proj"].shape[1])[idx] for (a, w), idx in zip(attn, sel.attn)]
        out["v"] = torch.stack([w["v_proj"][r] for (_, w), r in zip(attn, rows)])
    if "o" in modules:
        out["o"] = torch.stack([w["o_proj"][:, idx].T for (_, w), idx in zip(attn, sel.attn)])
    return {k: v.detach().float() for k, v in out.items()}


class Translator(nn.Module):
    """One 2-layer MLP per module type, shared across layers, applied to each neuron's vector."""

    def __init__(self, modules: list[str], d_source: int, d_student: int, std: float = 1e-5):
        super().__init__()
        self.nets = nn.ModuleDict({m: nn.Sequential(nn.Linear(d_source, d_source, bias=False), nn.ReLU(),
                                                    nn.Linear(d_source, d_student, bias=False)) for m in modules})
        for p in self.parameters():
            nn.init.normal_(p, std=std)

    def forward(self, vectors: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: self.nets[m](v) for m, v in vectors.items() if m in self.nets}


# where each module's neurons live in a student layer: the weight, and the dimension indexing them
PLACES = {"up": ("mlp.up_proj", 0), "down": ("mlp.down_proj", 1), "v": ("self_attn.v_proj", 0),
          "o": ("self_attn.o_proj", 1)}


def student_deltas(student, translated: dict[str, Tensor], sel: Selection) -> dict[str, Tensor]:
    """{parameter name: delta}: translated vectors placed at the student's kept neurons (rows of
    up/v, columns of down/o) of each paired layer; every other entry is zero."""
    out = {}
    for m, vectors in translated.items():
        layers, neurons = (sel.ffn_layers, sel.ffn) if m in FFN_MODULES else (sel.attn_layers, sel.attn)
        path, dim = PLACES[m]
        for i, (l, idx) in enumerate(zip(layers, neurons)):
            name = f"model.layers.{l}.{path}.weight"
            if m == "v":  # attention neurons read their values from v_proj rows (shared under GQA)
                attn = student.model.layers[l].self_attn
                idx = attention_value_rows(attn, attn.o_proj.weight.shape[1])[idx]
            out[name] = torch.zeros_like(student.get_parameter(name)).index_add(dim, idx,
                                                                                vectors[i] if dim == 0 else vectors[i].T)
    return out


def sequence_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Per sequence, the mean next-token CE over its labelled tokens: (B,)."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    n = (labels != IGNORE).sum(1).clamp(min=1)
    return ce.sum(1) / n


class AlignBatches:
    """Step s: extract example s and `align_batch - 1` align examples drawn with seed s."""

    def __init__(self, extract_pairs, align_pairs, align_batch: int, pad_id: int, max_len: int):
        self.extract, self.align = extract_pairs, align_pairs
        self.n_align = min(align_batch - 1, len(align_pairs))
        self.pad_id, self.max_len = pad_id, max_len
        self.steps = len(extract_pairs)

    def batch(self, step: int) -> dict[str, Tensor]:
        chosen = np.random.default_rng(step).choice(len(self.align), self.n_align, replace=False)
        batch = collate([self.extract[step]] + [self.align[i] for i in chosen], self.pad_id, self.max_len)
        return {**batch, "step": torch.tensor(step)}


class LaTen:
    label = "LaTen"

    def adapt(self, student, task, ctx):
        from torch.func import functional_call

        from harness.data.tasks import sft_pair
        from harness.training.board import side_log
        from harness.training.train import OptimConfig, TrainSettings, train

        o = resolve_options(self.name, DEFAULTS, ctx)
        unknown = sorted(set(o["modules"]) - set(FFN_MODULES + ATTN_MODULES))
        if unknown:
            raise HarnessError(f"laten: unknown module {unknown[0]!r}; modules are up, down, v, o")
        source, src_tok = frozen_source(self.name, ctx)
        tok = ctx.tokenizer
        student.to(ctx.device).eval()
        extract, align, inject = splits(task.records("train"), o["extract_examples"], o["align_examples"])
        n_layers = student.config.num_hidden_layers
        k_ffn = int(o["neuron_fraction"] * student.config.intermediate_size)
        k_attn = int(o["neuron_fraction"] * student.model.layers[0].self_attn.o_proj.weight.shape[1])
        if min(k_ffn, k_attn) < 1:
            raise HarnessError(f"laten: neuron_fraction {o['neuron_fraction']} keeps no neuron of the student")

        src_pools, stu_pools = model_pools(source), model_pools(student)  # both stay fixed until injection

        def located(record):
            """(source vectors, student selection) for one example."""
            pair = sft_pair(record)
            src_sel = select(attribute(source, *attribution_example(src_tok, pair), src_pools), n_layers, k_ffn, k_attn)
            stu_sel = select(attribute(student, *attribution_example(tok, pair), stu_pools), n_layers, k_ffn, k_attn)
            return source_vectors(source, src_pools, src_sel, o["modules"]), stu_sel

        steps = [located(r) for r in tqdm(extract, desc="laten attribution", unit="example", mininterval=2.0)]
        modules = sorted(steps[0][0])
        translator = Translator(modules, source.config.hidden_size, student.config.hidden_size).to(ctx.device)
        student.requires_grad_(False)
        params = dict(student.named_parameters())

        def loss_fn(batch, translator):
            vectors, sel = steps[int(batch["step"])]
            translated = translator(vectors)
            deltas = student_deltas(student, translated, sel)
            logits = functional_call(student, {n: params[n] + d for n, d in deltas.items()},
                                     kwargs={"input_ids": batch["input_ids"],
                                             "attention_mask": batch["attention_mask"]}).logits
            mse = sum(t.pow(2).mean() for t in translated.values())
            n = batch["input_ids"].shape[0]
            return sequence_ce(logits, batch["labels"]).sum() + n * o["mse_weight"] * mse

        batches = AlignBatches(sft_pairs(tok, extract), sft_pairs(tok, align), o["align_batch"],
                               tok.pad_token_id, o["max_len"])
        optim = OptimConfig(lr=o["lr"], weight_decay=o["weight_decay"], betas=(0.9, 0.95), warmup=0.1,
                            min_lr_ratio=0.04, grad_clip=0.0)
        desc = f"laten align {task.name}"
        result = train(translator, batches, TrainSettings(optim, log_every=1), loss_fn=loss_fn, desc=desc,
                       log_path=side_log(ctx.work_dir, desc))

        vectors, sel = located(inject)
        with torch.no_grad():
            translator.eval()
            for name, delta in student_deltas(student, translator(vectors), sel).items():
                params[name].add_(delta)
        student.requires_grad_(True)
        print(f"laten: {len(extract)} alignment steps, final loss {result.final_loss:.4f}; injected "
              f"{', '.join(modules)} at {k_ffn} FFN and {k_attn} attention neurons per layer")
        return student
