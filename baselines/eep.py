"""Pruning-EEP: Efficient Expert Pruning (Liu et al., arXiv 2407.00945) on the standard-MoE
source, then pruned to the student's dense Llama shape (paper section 4.1, "Pruning-EEP").

`extract` (once per source and k) runs EEP's gradient-free search as the authors'
code does it (imagination-research/EEP `opencompass/tasks/search.py`; see
docs/methods.md). A candidate is, per layer group g, a merge matrix M_g and a
router map R_g, both k x E: kept expert i = sum_j M_g[i, j] E_j (gate, up and down
alike); routing keeps the source's gate, p = softmax(gate logits) over the E
experts, q = p R_g^T, top-k of q, renormalised only if the source renormalises
(OLMoE does not; Mixtral, the authors' model, does). The search is steady state:
the archive of every evaluated candidate is the population. The best candidate,
re-checked on a dev subset, is merged into one dense FFN per layer (below) and
saved as a wide Llama: the artifact every student shape reuses.

`init_student` cuts that Llama to the student's shape with `harness.models.shrink`:
layers dropped (uniform map), heads index-selected by rotary pairs, FFN width and
hidden size pruned with torch-pruning (magnitude or Taylor importance).

Deliberate choices (not in the paper):
- Experts to one dense FFN: the k kept experts side by side (FFN width k*I), each
  expert's down projection scaled by its mean routing weight on calibration tokens
  (zero where not routed), so the dense FFN outputs the expected MoE output's mix.
- OLMoE's QK-norm (RMSNorm over the whole query and key vectors) has no Llama
  counterpart: its weight is folded into q_proj / k_proj and the per-token division
  by the RMS is replaced by the mean RMS on calibration tokens. `clip_qkv` is dropped.
- Layer groups: contiguous runs of `group_layers` layers (1: one M, R per layer,
  as in the released coefficients). The reference code's grouping-key bug, which
  put every layer in one group, is not reproduced.
- In the pruning stage a child in which no row happened to move gets one moved row,
  so no evaluation is spent on a copy of its parent. Mutation parents are drawn
  like crossover parents.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.models.archs import ffn_views
from harness.errors import HarnessError
from harness.api.method import resolve_options

DEFAULTS = {
    "experts_kept": 2,          # k, EEP's budget per layer (the authors use 2, 4 or 6 of Mixtral's 8)
    "group_layers": 1,          # layers sharing one (M, R)
    # search (the authors' values; see docs/methods.md)
    "population": 31,           # initial random keep-sets
    "prune_archive": 100,       # the pruning stage runs until the archive holds this many
    "merge_archive": 400,       # then the merging stage until this many
    "p_change": 0.25,           # each M_g and each R_g changes with this probability (at least one does)
    "p_move": 0.15,             # pruning stage: each row moves to an expert not kept
    "prune_margin": 3.0,        # pruning parents: fitness within this of the best
    "p_crossover": 0.3,
    "cross_margin": 1.0,        # crossover / mutation parents: within this of the best ...
    "cross_top": 6,             # ... or at least the top 6
    "p_parent1": 0.6,           # crossover: a changed group's row comes from parent 1
    "p_mutate": 0.25,           # mutation: each entry of a changed group gets + N(0, 1) * mutate_std
    "mutate_std": 0.065,
    "p_normalise": 0.1,         # then each row of M is scaled to sum to 1
    # fitness on the tasks' train splits, re-checked on a disjoint dev subset
    "fitness": "accuracy",      # accuracy (x100, macro over tasks) or loss (-100 x gold NLL per token)
    "fitness_examples": 32,     # per task
    "dev_examples": 32,         # per task; 0 keeps the best on the fitness subset
    "dev_top": 20,              # candidates re-checked on dev
    "score_batch": 64,
    # reaching the student's shape
    "calibration_sequences": 32,
    "layer_map": "uniform",
    "importance": "magnitude",  # or taylor
}


# ---------------------------------------------------------------- the candidate model

class EEPRouter(nn.Module):
    """The source's router followed by EEP's router map R (k x E)."""

    def __init__(self, weight: torch.Tensor, R: torch.Tensor, top_k: int, norm_topk_prob: bool):
        super().__init__()
        self.weight = weight  # the source gate's, unchanged
        self.register_buffer("R", R)
        self.top_k, self.norm_topk_prob = top_k, norm_topk_prob

    def forward(self, hidden_states):
        hidden_states = hidden_states.reshape(-1, self.weight.shape[1])
        logits = F.linear(hidden_states, self.weight)
        q = F.softmax(logits, dim=-1, dtype=torch.float) @ self.R.float().T  # (tokens, k)
        values, index = torch.topk(q, self.top_k, dim=-1)
        if self.norm_topk_prob:
            values = values / values.sum(-1, keepdim=True)
        return logits, values.to(logits.dtype), index


@dataclass
class Genome:
    """Per layer group g: merge matrix M[g] and router map R[g], each (k, E)."""

    M: torch.Tensor  # (G, k, E)
    R: torch.Tensor

    def clone(self) -> "Genome":
        return Genome(self.M.clone(), self.R.clone())


def keep_set_genome(keep: list[list[int]], n_experts: int) -> Genome:
    """One-hot M = R keeping experts keep[g] in group g."""
    M = torch.zeros(len(keep), len(keep[0]), n_experts)
    for g, experts in enumerate(keep):
        M[g, torch.arange(len(experts)), torch.tensor(experts)] = 1.0
    return Genome(M, M.clone())


def layer_groups(n_layers: int, group_layers: int) -> list[int]:
    """Group index of each layer: contiguous runs of `group_layers` layers."""
    if group_layers < 1:
        raise HarnessError(f"pruning-eep: group_layers must be >= 1, got {group_layers}")
    return [layer // group_layers for layer in range(n_layers)]


class MoECandidates:
    """A loaded OLMoE-style source whose MoE blocks are rewritten in place for each candidate.
    The source's own expert tensors are kept aside, so any genome can be applied in turn."""

    def __init__(self, model, group_layers: int = 1):
        if model.config.model_type != "olmoe":
            raise HarnessError(f"pruning-eep prunes a standard MoE (OLMoE); the source is "
                               f"{model.config.model_type!r}")
        self.model = model
        self.layers = [layer.mlp for layer in model.model.layers]
        self.groups = layer_groups(len(self.layers), group_layers)
        self.n_groups = max(self.groups) + 1
        self.n_experts = model.config.num_experts
        self.top_k = model.config.num_experts_per_tok
        self.norm = bool(getattr(model.config, "norm_topk_prob", False))
        self.original = [(mlp.gate, mlp.experts.gate_up_proj.detach().clone(), mlp.experts.down_proj.detach().clone())
                         for mlp in self.layers]

    def apply(self, genome: Genome) -> None:
        k = genome.M.shape[1]
        for layer, (mlp, (gate, gate_up, down)) in enumerate(zip(self.layers, self.original)):
            M, R = genome.M[self.groups[layer]].to(gate_up), genome.R[self.groups[layer]].to(gate_up)
            mlp.experts.gate_up_proj = nn.Parameter(torch.einsum("ke,eoh->koh", M, gate_up), requires_grad=False)
            mlp.experts.down_proj = nn.Parameter(torch.einsum("ke,eoh->koh", M, down), requires_grad=False)
            mlp.experts.num_experts = k
            mlp.gate = EEPRouter(gate.weight, R, min(self.top_k, k), self.norm)

    def restore(self) -> None:
        for mlp, (gate, gate_up, down) in zip(self.layers, self.original):
            mlp.experts.gate_up_proj = nn.Parameter(gate_up.clone(), requires_grad=False)
            mlp.experts.down_proj = nn.Parameter(down.clone(), requires_grad=False)
            mlp.experts.num_experts = self.n_experts
            mlp.gate = gate


# ---------------------------------------------------------------- the search

def _changed_groups(n_groups: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """(2, G) booleans, row 0 for the M groups and row 1 for the R groups; at least one is set."""
    changed = rng.random((2, n_groups)) < p
    if not changed.any():
        changed.flat[rng.integers(changed.size)] = True
    return changed


def prune_move(parent: Genome, changed: np.ndarray, p_move: float, rng: np.random.Generator) -> Genome:
    """Pruning stage: rows of changed groups move to an expert the group does not keep; M = R."""
    child = parent.clone()
    groups = np.flatnonzero(changed.any(0))
    n_experts = child.M.shape[2]
    moves = [(g, i) for g in groups for i in range(child.M.shape[1]) if rng.random() < p_move]
    if not moves:
        g = int(rng.choice(groups))
        moves = [(g, int(rng.integers(child.M.shape[1])))]
    for g, i in moves:
        kept = set(child.M[g].argmax(1).tolist())
        free = [e for e in range(n_experts) if e not in kept]
        if free:
            child.M[g, i] = 0.0
            child.M[g, i, int(rng.choice(free))] = 1.0
    child.R = child.M.clone()
    return child


def crossover(p1: Genome, p2: Genome, changed: np.ndarray, p_parent1: float, rng: np.random.Generator) -> Genome:
    child = p1.clone()
    for which, (c, o) in enumerate([(child.M, p2.M), (child.R, p2.R)]):
        for g in np.flatnonzero(changed[which]):
            from_other = torch.from_numpy(rng.random(c.shape[1]) >= p_parent1)
            c[g, from_other] = o[g, from_other]
    return child


def mutate(parent: Genome, changed: np.ndarray, p_mutate: float, std: float, rng: np.random.Generator) -> Genome:
    child = parent.clone()
    for which, c in enumerate([child.M, child.R]):
        for g in np.flatnonzero(changed[which]):
            hit = torch.from_numpy(rng.random(tuple(c[g].shape)) < p_mutate)
            noise = torch.from_numpy(rng.standard_normal(tuple(c[g].shape))).float() * std
            c[g] += noise * hit
    return child


def normalise_rows(genome: Genome) -> Genome:
    """Each row of M scaled to sum to 1 (R is left as it is); rows summing to ~0 are kept."""
    s = genome.M.sum(-1, keepdim=True)
    genome.M = torch.where(s.abs() > 1e-8, genome.M / s, genome.M)
    return genome


@dataclass
class Scored:
    fitness: float
    genome: Genome
    stage: str


def evolutionary_search(evaluate: Callable[[Genome], float], n_groups: int, k: int, n_experts: int,
                        opts: dict, seed: int, on_eval: Callable[[int, Scored, float], None] | None = None
                        ) -> list[Scored]:
    """EEP's steady-state search; returns the archive, best first. `evaluate` is higher-is-better."""
    if not 1 <= k <= n_experts:
        raise HarnessError(f"pruning-eep: experts_kept must lie in 1..{n_experts}, got {k}")
    rng = np.random.default_rng(seed)
    archive: list[Scored] = []

    def add(genome: Genome, stage: str) -> None:
        scored = Scored(float(evaluate(genome)), genome, stage)
        archive.append(scored)
        archive.sort(key=lambda s: -s.fitness)  # stable: ties keep their age order
        if on_eval:
            on_eval(len(archive), scored, archive[0].fitness)

    def within(margin: float, at_least: int = 1) -> list[Scored]:
        close = [s for s in archive if s.fitness >= archive[0].fitness - margin]
        return close if len(close) >= at_least else archive[:at_least]

    for _ in range(min(opts["population"], opts["prune_archive"])):
        keep = [sorted(rng.choice(n_experts, k, replace=False).tolist()) for _ in range(n_groups)]
        add(keep_set_genome(keep, n_experts), "init")
    while len(archive) < opts["prune_archive"]:
        pool = within(opts["prune_margin"])
        parent = pool[rng.integers(len(pool))].genome
        add(prune_move(parent, _changed_groups(n_groups, opts["p_change"], rng), opts["p_move"], rng), "prune")
    while len(archive) < opts["merge_archive"]:
        pool = within(opts["cross_margin"], opts["cross_top"])
        changed = _changed_groups(n_groups, opts["p_change"], rng)
        if rng.random() < opts["p_crossover"] and len(pool) >= 2:
            i, j = rng.choice(len(pool), 2, replace=False)
            child = crossover(pool[i].genome, pool[j].genome, changed, opts["p_parent1"], rng)
        else:
            child = mutate(pool[rng.integers(len(pool))].genome, changed, opts["p_mutate"], opts["mutate_std"], rng)
        if rng.random() < opts["p_normalise"]:
            child = normalise_rows(child)
        add(child, "merge")
    return archive


# ---------------------------------------------------------------- fitness on the tasks

class TaskFitness:
    """Macro-average over tasks of accuracy (x100) or -100 x gold-answer NLL per token."""

    def __init__(self, model, tokenizer, records: dict[str, list[dict]], metric: str, batch_size: int):
        from harness.stages.scoring import encode_choices

        if metric not in ("accuracy", "loss"):
            raise HarnessError(f"pruning-eep: unknown fitness {metric!r}; use accuracy or loss")
        self.model, self.metric, self.batch_size = model, metric, batch_size
        self.pad = tokenizer.pad_token_id
        self.records = records
        self.pairs = {t: encode_choices(tokenizer, recs) for t, recs in records.items()}

    def __call__(self) -> float:
        from harness.stages.scoring import choice_accuracy, continuation_logprobs, gold_loss

        values = []
        for task, recs in self.records.items():
            scores = continuation_logprobs(self.model, self.pairs[task], self.pad, self.batch_size)
            values.append(choice_accuracy(scores, recs) if self.metric == "accuracy"
                          else -100.0 * gold_loss(scores, recs, self.pairs[task]))
        return float(np.mean(values))


def split_records(records: dict[str, list[dict]], n_fit: int, n_dev: int, seed: int):
    """Disjoint fitness and dev subsets of each task's train split (seeded shuffle)."""
    fit, dev = {}, {}
    for task, recs in sorted(records.items()):
        order = np.random.default_rng([seed, len(task)]).permutation(len(recs))
        fit[task] = [recs[i] for i in order[:n_fit]]
        if n_dev:
            dev[task] = [recs[i] for i in order[n_fit:n_fit + n_dev]]
            if not dev[task]:
                raise HarnessError(f"pruning-eep: task {task!r} has {len(recs)} train records, none left for dev")
    return fit, dev


# ---------------------------------------------------------------- to one dense Llama

@torch.no_grad()
def calibration_stats(cands: MoECandidates, calibration: torch.Tensor, batch: int = 8):
    """Mean routing weight of each kept expert slot per layer, and mean RMS of the query and
    key vectors that enter OLMoE's QK-norm, over the calibration tokens."""
    model = cands.model
    k = cands.layers[0].experts.num_experts
    route = [torch.zeros(k, dtype=torch.float64) for _ in cands.layers]
    rms = {}
    tokens = [0]
    hooks = []

    def on_route(layer):
        def hook(module, args, out):
            _, values, index = out
            route[layer] += torch.zeros(values.shape[0], k, dtype=torch.float64).scatter_add_(
                1, index.cpu(), values.double().cpu()).sum(0)
        return hook

    def on_norm(key):
        def hook(module, args):
            x = args[0].float()
            r = torch.sqrt(x.pow(2).mean(-1) + module.variance_epsilon)
            rms[key] = rms.get(key, 0.0) + float(r.sum())
        return hook

    for layer, (mlp, block) in enumerate(zip(cands.layers, model.model.layers)):
        hooks.append(mlp.gate.register_forward_hook(on_route(layer)))
        hooks.append(block.self_attn.q_norm.register_forward_pre_hook(on_norm(("q", layer))))
        hooks.append(block.self_attn.k_norm.register_forward_pre_hook(on_norm(("k", layer))))
    try:
        device = next(model.parameters()).device
        for lo in range(0, len(calibration), batch):
            ids = calibration[lo:lo + batch].to(device)
            model(input_ids=ids)
            tokens[0] += ids.numel()
    finally:
        for h in hooks:
            h.remove()
    n = tokens[0]
    return [r / n for r in route], {key: v / n for key, v in rms.items()}


def dense_llama(cands: MoECandidates, calibration: torch.Tensor):
    """The candidate currently applied, as a `LlamaForCausalLM` with one FFN of width k*I per layer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    src = cands.model
    cfg = src.config
    k, inter = cands.layers[0].experts.num_experts, cfg.intermediate_size
    route, rms = calibration_stats(cands, calibration)
    config = LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=k * inter,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.hidden_size // cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.rms_norm_eps,
        rope_parameters=copy.deepcopy(cfg.rope_parameters), tie_word_embeddings=False, attention_bias=False,
        bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id)
    s = src.state_dict()
    state = {"model.embed_tokens.weight": s["model.embed_tokens.weight"], "model.norm.weight": s["model.norm.weight"],
             "lm_head.weight": src.get_output_embeddings().weight}
    views = ffn_views(src)
    for i, block in enumerate(src.model.layers):
        p, attn = f"model.layers.{i}.", block.self_attn
        state[p + "input_layernorm.weight"] = block.input_layernorm.weight
        state[p + "post_attention_layernorm.weight"] = block.post_attention_layernorm.weight
        state[p + "self_attn.q_proj.weight"] = attn.q_norm.weight[:, None] * attn.q_proj.weight / rms[("q", i)]
        state[p + "self_attn.k_proj.weight"] = attn.k_norm.weight[:, None] * attn.k_proj.weight / rms[("k", i)]
        state[p + "self_attn.v_proj.weight"] = attn.v_proj.weight
        state[p + "self_attn.o_proj.weight"] = attn.o_proj.weight
        experts = views[i].routed  # the k kept slots: gate, up (k, I, H), down (k, H, I)
        state[p + "mlp.gate_proj.weight"] = experts.gate.reshape(k * inter, -1)
        state[p + "mlp.up_proj.weight"] = experts.up.reshape(k * inter, -1)
        weighted = experts.down * route[i].to(experts.down)[:, None, None]
        state[p + "mlp.down_proj.weight"] = weighted.permute(1, 0, 2).reshape(cfg.hidden_size, k * inter)
    model = LlamaForCausalLM(config)
    model.load_state_dict({key: v.detach().float().cpu().contiguous() for key, v in state.items()}, strict=True)
    return model, [r.tolist() for r in route]


# ---------------------------------------------------------------- the method

class PruningEEP:
    """EEP expert pruning/merging on OLMoE, then pruned to the dense student's shape."""

    label = "Pruning-EEP"

    def options(self, ctx) -> dict:
        opts = resolve_options("pruning-eep", DEFAULTS, ctx)
        if opts["importance"] not in ("magnitude", "taylor"):
            raise HarnessError(f"pruning-eep: unknown importance {opts['importance']!r}; use magnitude or taylor")
        return opts

    def extract(self, ctx) -> dict:
        from safetensors.torch import save_file
        from tqdm import tqdm

        opts = self.options(ctx)
        torch.manual_seed(ctx.seed)
        source = ctx.source.load(ctx.device)
        cands = MoECandidates(source, opts["group_layers"])
        k = opts["experts_kept"]
        tok = ctx.data.source_tokenizer()
        fit_records, dev_records = split_records(ctx.data.task_records("train"), opts["fitness_examples"],
                                                 opts["dev_examples"], ctx.seed)
        fitness = TaskFitness(source, tok, fit_records, opts["fitness"], opts["score_batch"])
        dev = TaskFitness(source, tok, dev_records, opts["fitness"], opts["score_batch"]) if dev_records else None
        unpruned = fitness()
        unpruned_dev = dev() if dev else None

        def evaluate(genome: Genome) -> float:
            cands.apply(genome)
            return fitness()

        log_path = ctx.work_dir / "search_log.jsonl"
        bar = tqdm(total=opts["merge_archive"], desc=f"eep search {ctx.source.name} k={k}", unit="cand",
                   mininterval=2.0)
        t0 = time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as log:
            def on_eval(n: int, scored: Scored, best: float) -> None:
                log.write(json.dumps({"candidate": n, "stage": scored.stage, "fitness": scored.fitness,
                                      "best": best, "seconds": round(time.perf_counter() - t0, 2)}) + "\n")
                bar.update(1)
                bar.set_postfix(best=f"{best:.2f}")

            archive = evolutionary_search(evaluate, cands.n_groups, k, cands.n_experts, opts, ctx.seed, on_eval)
        bar.close()
        search_seconds = time.perf_counter() - t0
        best, best_dev = archive[0], None
        if dev:
            rechecked = []
            for s in archive[:opts["dev_top"]]:
                cands.apply(s.genome)
                rechecked.append((dev(), s))
            best_dev, best = max(rechecked, key=lambda x: x[0])  # first of equals: the better on train
        initial = [s.fitness for s in archive if s.stage == "init"]

        cands.apply(best.genome)
        calibration = self._calibration(ctx, opts, source.config.max_position_embeddings)
        dense, route = dense_llama(cands, calibration)
        dense.save_pretrained(ctx.work_dir / "dense")
        tok.save_pretrained(ctx.work_dir / "dense")
        save_file({"M": best.genome.M.contiguous(), "R": best.genome.R.contiguous()},
                  str(ctx.work_dir / "genome.safetensors"))
        save_file({"input_ids": calibration}, str(ctx.work_dir / "calibration.safetensors"))
        return {"experts_kept": k, "groups": cands.n_groups, "group_layers": opts["group_layers"],
                "fitness_metric": opts["fitness"], "fitness_examples": opts["fitness_examples"],
                "dev_examples": opts["dev_examples"], "evaluations": len(archive),
                "search_seconds": round(search_seconds, 2),
                "fitness": {"unpruned": unpruned, "best": best.fitness, "best_stage": best.stage,
                            "random_keep_sets_mean": float(np.mean(initial)),
                            "random_keep_sets_max": float(np.max(initial))},
                "dev_fitness": {"unpruned": unpruned_dev, "best": best_dev},
                "kept_experts": [[[int(e) for e in row.nonzero().flatten()] for row in g] for g in best.genome.M],
                "mean_routing_weight": route, "options": opts}

    @staticmethod
    def _calibration(ctx, opts: dict, max_positions: int) -> torch.Tensor:
        """Evenly spaced windows of the pre-training stream: routing weights, QK-norm scale, Taylor."""
        tokens = np.asarray(ctx.data.tokens)
        seq = min(ctx.data.seq_len, max_positions)
        n = min(opts["calibration_sequences"], len(tokens) // seq)
        if n == 0:
            raise HarnessError(f"pruning-eep: the token stream ({len(tokens)} tokens) is shorter than one sequence")
        starts = np.linspace(0, len(tokens) - seq, n).astype(int)
        return torch.from_numpy(np.stack([tokens[s:s + seq] for s in starts]).astype(np.int64))

    def init_student(self, config, artifact, ctx):
        from safetensors.torch import load_file
        from transformers import LlamaForCausalLM

        from harness.io import reading
        from harness.models.shrink import shrink_llama

        opts = self.options(ctx)
        if artifact is None or not (artifact / "dense" / "config.json").is_file():
            raise HarnessError(f"pruning-eep: missing artifact {artifact}/dense; run the extract stage")
        with reading(artifact / "dense", "pruned source checkpoint"):
            dense = LlamaForCausalLM.from_pretrained(artifact / "dense")
        with reading(artifact / "calibration.safetensors", "calibration tokens"):
            calibration = load_file(str(artifact / "calibration.safetensors"))["input_ids"]
        return shrink_llama(dense, config, calibration, opts["layer_map"], opts["importance"])
