"""MASA (ICLR 2026, "Inheriting Generalizable Knowledge from LLMs to Diverse Vertical Tasks").

Section 3.1: each selected FFN weight W of a frozen source gets a small square
gene matrix M (r x r), aligned to W by output alignment (eqs. 1-3, appendix
A.2 eqs. 10-14) plus log-spectral alignment (eqs. 4-5). Section 3.2: adaptive
scaling reshapes M to any student weight size p x q through its SVD (eq. 6).

Orientation. The paper writes W in R^{d_in x d_out}; this file keeps PyTorch's
`Linear.weight` orientation, W of shape (d_out, d_in) with y = W x, and M in
the same column-vector convention as eq. 11 (z = M x). So `adaptive_scale(M,
p, q)` returns a (p, q) = (out, in) matrix that is directly a student's
`Linear.weight`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from harness.models.archs import ffn_view, ffn_views
from harness.errors import HarnessError
from harness.api.method import resolve_options
from harness.models.build import layer_map  # noqa: F401  (public here too: tests and users call masa.layer_map)


# ---------------------------------------------------------------- section 3.1, appendix A.2

def compress(x: Tensor, r: int) -> Tensor:
    """f_c (eq. 10): (..., d_in) -> (..., n, r), n = ceil(d_in / r).

    When r does not divide d_in the last block is completed with the last
    n*r - d_in elements of x, in order ("duplicating elements from the tail of
    x"). If that is more elements than x has (r > 2*d_in), the tail is taken
    from x repeated cyclically, still ending at x's last element.
    """
    d_in = x.shape[-1]
    n = math.ceil(d_in / r)
    pad = n * r - d_in
    if pad:
        tail = (torch.arange(pad, device=x.device) + d_in - pad) % d_in  # (pad,)
        x = torch.cat([x, x[..., tail]], dim=-1)  # (..., n*r)
    return x.reshape(*x.shape[:-1], n, r)


def decompress(z: Tensor, d_out: int) -> Tensor:
    """f_d (eqs. 12-14): (..., n, r) -> (..., d_out).

    Concatenate the blocks (length n*r); if longer than d_out keep the first
    d_out entries (eq. 13), otherwise repeat the whole vector ceil(d_out/(n*r))
    times and truncate (eq. 14).
    """
    z = z.reshape(*z.shape[:-2], -1)  # (..., n*r)
    length = z.shape[-1]
    if length < d_out:
        z = z.repeat(*([1] * (z.dim() - 1)), math.ceil(d_out / length))
    return z[..., :d_out]


def gene_forward(M: Tensor, x: Tensor, d_out: int) -> Tensor:
    """x~ = f_d(M f_c(x)) (eq. 1): (..., d_in) -> (..., d_out).

    Eq. 11 multiplies each block as a column vector, z_i = M x_i. Blocks here
    are rows of `compress(x)`, so the product is written `blocks @ M^T`, which
    is the same z_i: (x_i^T M^T)^T = M x_i. Leading dims of M broadcast against
    those of x like `torch.matmul` (one M per row of a (B, N, d_in) input is
    M of shape (B, 1, r, r)).
    """
    return decompress(compress(x, M.shape[-1]) @ M.transpose(-1, -2), d_out)


def output_loss(W: Tensor, M: Tensor, x: Tensor) -> Tensor:
    """L_out = ||W x - f_d(M f_c(x))||^2, averaged over the inputs in `x` (rows), in M's precision
    (a bfloat16 source's W and x upcast here, one weight at a time)."""
    W, x = W.to(M.dtype), x.to(M.dtype)
    target = x @ W.transpose(-1, -2)  # (N, d_out)
    return (target - gene_forward(M, x, W.shape[-2])).pow(2).sum(-1).mean()


def spectral_loss(W: Tensor, M: Tensor, eps: float = 1e-12) -> Tensor:
    """L_spec = sum_{i<=k} (log s_i(W) - log s_i(M))^2 over the top k = min(r, rank bound) singular values.

    Stability: `torch.linalg.svdvals` has well-defined gradients even for
    repeated singular values (unlike singular vectors), and singular values are
    clamped at `eps` before the log, so a collapsing direction of M gives a
    large but finite loss and gradient instead of inf/NaN. W is frozen, so its
    spectrum is computed without gradient.
    """
    return log_spectrum_gap(log_spectrum(W, M.shape[-1], eps), M, eps)


def log_spectrum(W: Tensor, r: int, eps: float = 1e-12) -> Tensor:
    """log of W's top min(r, rank bound) singular values; W is frozen, so no gradient."""
    with torch.no_grad():
        s = torch.linalg.svdvals(W.to(torch.promote_types(W.dtype, torch.float32)))
    return s[..., :min(r, *W.shape[-2:])].clamp_min(eps).log()


def log_spectrum_gap(log_s_w: Tensor, M: Tensor, eps: float = 1e-12, reduction: str = "sum") -> Tensor:
    """sum_i (log s_i(W) - log s_i(M))^2 given W's log spectrum (computed once per W); with
    `reduction` "mean", divided by the k terms (SPECTRAL_REDUCTIONS)."""
    k = log_s_w.shape[-1]
    s_m = torch.linalg.svdvals(M)[..., :k]
    gap = (log_s_w - s_m.clamp_min(eps).log()).pow(2)
    return gap.mean(-1) if reduction == "mean" else gap.sum(-1)


# L_spec sums r terms (eq. 5), so at a fixed lambda a larger gene (Table 5's ratio sweep) also
# weighs the spectrum more; "mean" keeps lambda's meaning at every r (issue 18 item 13)
SPECTRAL_REDUCTIONS = ("sum", "mean")


def gene_rank(d_in: int, d_out: int, ratio: float) -> int:
    """r such that r^2 / (d_in * d_out) is closest to the M/W ratio (Table 5: 3/12/23/40 %)."""
    return max(1, round(math.sqrt(ratio * d_in * d_out)))


# ---------------------------------------------------------------- section 3.2

def _resample(importance: Tensor, size: int) -> Tensor:
    """Indices (..., size) into a dimension of length r = importance.shape[-1] (eq. 6 scores).

    size <= r: the `size` most important indices, kept in their original order.
    size > r: all r indices, then the most important ones again in descending
    importance, cycling through them until `size` indices are reached.
    """
    r = importance.shape[-1]
    # Norms equal to 9 decimals are ties, broken by index: with r' = r every row of
    # U has norm 1, and float noise must not decide which rows survive.
    importance = torch.round(importance.double(), decimals=9)
    order = importance.argsort(dim=-1, descending=True, stable=True)  # (..., r)
    if size <= r:
        return order[..., :size].sort(dim=-1).values
    base = torch.arange(r, device=importance.device).expand(*importance.shape[:-1], r)
    extra = order[..., torch.arange(size - r, device=importance.device) % r]
    return torch.cat([base, extra], dim=-1)


def adaptive_scale(M: Tensor, p: int, q: int, rank: int) -> Tensor:
    """M (..., r, r) -> M_hat (..., p, q) = U_p S V_q^T (section 3.2).

    SVD M = U S V^T keeping `rank` = r' components; the importance of row i of
    U_r is ||U_r[i, :]|| and of column j of V_r^T is ||V_r^T[:, j]|| (eq. 6).
    Rows of U_r and columns of V_r^T are kept or replicated by `_resample`; S is
    unchanged.
    """
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    U, S, Vh = U[..., :, :rank], S[..., :rank], Vh[..., :rank, :]  # (..., r, r'), (..., r'), (..., r', r)
    rows = _resample(U.norm(dim=-1), p)  # (..., p)
    cols = _resample(Vh.norm(dim=-2), q)  # (..., q)
    U_p = U.gather(-2, rows[..., :, None].expand(*rows.shape, U.shape[-1]))  # (..., p, r')
    V_q = Vh.gather(-1, cols[..., None, :].expand(*Vh.shape[:-1], cols.shape[-1]))  # (..., r', q)
    return (U_p * S[..., None, :]) @ V_q


# ---------------------------------------------------------------- the method

DEFAULTS = {
    "size": "ratio",  # how r is chosen: ratio | rank:R | total:N | fraction:F (GENE_SIZES)
    "ratio": 0.23,  # M/W ratio r^2 / (d_in d_out); Table 5's best
    # lambda in L = L_out + lambda L_spec; not stated in the paper. On the trained micro sources
    # L_out is 350-1560 and L_spec 760-2030 at init, so lambda = 1 weighs the terms on par.
    "spectral_weight": 1.0,
    "spectral_reduction": "sum",  # L_spec over the r singular values: sum (eq. 5) | mean (SPECTRAL_REDUCTIONS)
    "align_tokens": 200_000,  # tokens of alignment text (paper: 4M-10M)
    "align_batch": 8,  # sequences per alignment step
    "lr": 1e-2,  # Adam on the gene matrices (not stated in the paper)
    "experts_per_layer": 1,  # standard MoE: gene matrices for this many most-used experts per layer
    # ... counted over at most this many seq_len windows of the tasks' train queries, an equal share
    # per task (the paper does not say how many; L65: "active across diverse tasks")
    "count_windows": 64,
    "experts_init": "first",  # with several: the student's FFN from the first | side_by_side (EXPERTS_INIT)
    "shared_genes": "fused",  # DeepSeekMoE's shared experts: fused as stored | per_expert (SHARED_GENES)
    "rank_fraction": 0.5,  # r' = rank_fraction * r principal components kept by adaptive scaling
    "scaling": "adaptive",  # adaptive (section 3.2) | truncate (Table 4's "w.o. adaptive scaling")
    "layer_map": "uniform",  # student layer k <- source layer round(k (L_src - 1) / (L_s - 1))
    "rescale": False,  # rescale M_hat to the student's init std (the paper does not)
    "domain": None,  # align on one corpus domain only (Figure 4); None = the whole corpus
    # the frozen source's weights: auto = bfloat16 on an accelerator that has it (OLMo-7B: 13.8 GB, not
    # 27.6), else float32; each weight and its inputs are upcast to float32 one at a time for the losses
    "source_dtype": "auto",
}
KINDS = ("gate", "up", "down")
GENES_FILE = "genes.safetensors"


@dataclass
class AlignedWeight:
    """One source FFN weight W (out, in) and where its input comes from."""

    key: str  # "layers.3.up"
    layer: int
    kind: str  # gate | up | down
    weight: Tensor  # (d_out, d_in), frozen
    expert: int | None = None  # routed expert index (standard MoE), None for dense / shared FFNs
    shared: int | None = None  # with `shared_genes: per_expert`, which shared expert

    @property
    def ffn(self) -> tuple[int, int | None, int | None]:
        """The FFN (layer, routed expert, shared expert) whose inputs W sees."""
        return self.layer, self.expert, self.shared


def ffn_weights(source, expert_choice: dict[int, list[int]] | None = None,
                shared_genes: str = "fused") -> list[AlignedWeight]:
    """The FFN weights MASA aligns (section 3.1): every gate/up/down of a dense source; the
    shared experts of a shared-expert MoE (fused as stored, or one by one: `shared_genes`); the
    chosen routed experts of a standard MoE."""
    out = []
    for l, view in enumerate(ffn_views(source)):
        if view.dense is None and view.shared is not None and shared_genes == "per_expert":
            for i, part in enumerate(view.shared_experts()):
                ffn = {"gate": part.gate, "up": part.up, "down": part.down}
                out += [AlignedWeight(f"layers.{l}.shared{i}.{k}", l, k, w.detach(), shared=i) for k, w in ffn.items()]
            continue
        if view.whole is not None:  # dense FFN or shared experts
            ffn = {"gate": view.whole.gate, "up": view.whole.up, "down": view.whole.down}
            out += [AlignedWeight(f"layers.{l}.{k}", l, k, w.detach()) for k, w in ffn.items()]
            continue
        if expert_choice is None:
            raise HarnessError("a standard MoE source needs its most-used experts counted first")
        for e in expert_choice[l]:
            expert = view.routed.expert(e)
            ffn = {"gate": expert.gate, "up": expert.up, "down": expert.down}
            out += [AlignedWeight(f"layers.{l}.expert{e}.{k}", l, k, w.detach(), e) for k, w in ffn.items()]
    return out


def routed_only(source) -> bool:
    """A standard MoE: some layer has routed experts and neither a dense FFN nor shared experts."""
    return any(view.whole is None for view in ffn_views(source))


def gene_ranks(weights: list[AlignedWeight], ratio: float) -> dict[str, int]:
    """r of each weight's gene matrix from the M/W ratio. Per weight, because sources mix FFN
    sizes (DeepSeekMoE's first layer is dense and wider than its shared experts)."""
    return {w.key: gene_rank(w.weight.shape[1], w.weight.shape[0], ratio) for w in weights}


# How big the gene matrices are. The paper gives two sizes that no one reading reconciles
# (issue 18 item 7): L240 / Table 5, "M/W ratio" 3-40 % (best 23 %), and L45 / L65, "all gene
# matrices 11.8M-38.6M parameters, as little as 0.17 % of the source". Each is a `size` option:
GENE_SIZES = {
    "ratio": "r^2 = ratio * d_in * d_out for every weight (Table 5's M/W ratio, per weight; the default)",
    "rank": "rank:R - the same r = R for every weight",
    "total": "total:N - all gene matrices together hold about N parameters (L45's 11.8M-38.6M), "
             "one common M/W ratio",
    "fraction": "fraction:F - all gene matrices together hold about F of the source's parameters "
                "(L45's 0.17 %: fraction:0.0017), one common M/W ratio",
}


def parse_size(size: str) -> tuple[str, float | None]:
    """("ratio", None), ("rank", R), ("total", N) or ("fraction", F) from the `size` option."""
    kind, sep, value = str(size).partition(":")
    usage = "ratio, rank:<r>, total:<parameters> or fraction:<of the source>"
    if kind == "ratio" and not sep:
        return kind, None
    if kind not in GENE_SIZES or kind == "ratio" or not value:
        raise HarnessError(f"masa: size {size!r} is not one of {usage}")
    try:
        number = float(value)
    except ValueError:
        raise HarnessError(f"masa: size {size!r}: {value!r} is not a number") from None
    if (kind == "rank" and (number < 1 or number != int(number))) or (kind == "total" and number < 1) or \
            (kind == "fraction" and not 0 < number < 1):
        raise HarnessError(f"masa: size {size!r} is out of range (rank: an integer >= 1; total: >= 1 "
                           f"parameter; fraction: between 0 and 1)")
    return kind, number


def sized_ranks(weights: list[AlignedWeight], size: str, ratio: float, source_params: int) -> dict[str, int]:
    """r of each weight's gene matrix under the `size` reading (GENE_SIZES)."""
    kind, value = parse_size(size)
    if kind == "ratio":
        return gene_ranks(weights, ratio)
    if kind == "rank":
        return {w.key: int(value) for w in weights}
    total = value if kind == "total" else value * source_params
    return gene_ranks(weights, total / sum(w.weight.numel() for w in weights))


def gene_totals(r: dict[str, int], source_params: int) -> dict:
    """What a manifest and Tables 4/5 say about the genes' size (L45 states it this way)."""
    total = sum(v * v for v in r.values())
    return {"matrices": len(r), "parameters": total, "source_parameters": source_params,
            "percent_of_source": 100.0 * total / source_params}


def _mlp_inputs(source, input_ids: Tensor) -> dict[int, Tensor]:
    """The hidden states each layer's FFN receives (post-norm), captured by forward hooks: (N, H)."""
    captured, handles = {}, []
    for l, layer in enumerate(source.model.layers):
        def grab(module, args, l=l):
            captured[l] = args[0].reshape(-1, args[0].shape[-1])
        handles.append(layer.mlp.register_forward_pre_hook(grab))
    try:
        with torch.no_grad():
            source(input_ids=input_ids)
    finally:
        for h in handles:
            h.remove()
    return captured


def expert_frequencies(source, batches) -> dict[int, Tensor]:
    """Per layer, how often the router's top-k picks each expert over `batches` of input ids."""
    views = ffn_views(source)
    counts: dict[int, Tensor] = {}
    for input_ids in batches:
        for l, x in _mlp_inputs(source, input_ids).items():
            routed = views[l].routed
            idx = routed.route(x)[1]
            counts[l] = counts.get(l, 0) + torch.bincount(idx.reshape(-1), minlength=routed.n)
    return counts


def ffn_inputs(source, layer: int, expert: int | None, x: Tensor, shared: int | None = None) -> dict[str, Tensor]:
    """The inputs the frozen source feeds to one FFN's gate, up and down, given the FFN input
    x (N, H) of its layer: gate/up see x, down sees act(gate x) * up x. A routed expert only
    sees the tokens its router sends to it; shared expert `shared` every token. Computed once
    for the three weights."""
    view = ffn_view(source, layer)
    if expert is not None:
        x = x[(view.routed.route(x)[1] == expert).any(-1)]
        ffn = view.routed.expert(expert)
    else:
        ffn = view.whole if shared is None else view.shared_experts()[shared]
    return {"gate": x, "up": x, "down": ffn.activations(x)}


def weight_inputs(source, w: AlignedWeight, x: Tensor) -> Tensor:
    """The inputs the frozen source feeds to the single weight W (see `ffn_inputs`)."""
    return ffn_inputs(source, w.layer, w.expert, x, w.shared)[w.kind]


def alignment_step(genes: dict[str, Tensor], weights: dict[str, Tensor], spectra: dict[str, Tensor],
                   inputs: dict[str, Tensor], spectral_weight: float,
                   reduction: str = "sum") -> tuple[Tensor, Tensor]:
    """(L_out, L_spec) summed over the aligned weights; L = L_out + lambda L_spec (section 3.1).

    `inputs[key]` holds the rows the source fed to weight `key` in this batch (it may be empty
    for a routed expert no token reached); `spectra[key]` is `log_spectrum(W, r)`."""
    l_out = l_spec = torch.zeros(())
    for key, M in genes.items():
        if len(inputs[key]):
            l_out = l_out + output_loss(weights[key], M, inputs[key])
        # without the spectral term L_spec is only logged: no graph through M's SVD (its backward
        # needs the singular vectors, ~5x the values' cost)
        with torch.set_grad_enabled(torch.is_grad_enabled() and spectral_weight != 0):
            l_spec = l_spec + log_spectrum_gap(spectra[key], M, reduction=reduction)
    return l_out, l_spec


def aligned_backward(genes: dict[str, Tensor], weights: dict[str, Tensor], spectra: dict[str, Tensor],
                     inputs: dict[str, Tensor], spectral_weight: float,
                     reduction: str = "sum") -> tuple[Tensor, Tensor]:
    """`alignment_step`'s loss, back-propagated one weight at a time: each gene matrix appears in
    its own weight's terms only, so its gradient is the joint loss's, while the memory held is one
    weight's graph rather than all of them (OLMo-7B: 96 weights, ~109 GB of graphs at once). The
    returned (L_out, L_spec) are detached sums, added in `alignment_step`'s order."""
    l_out = l_spec = torch.zeros(())
    for key, M in genes.items():
        one_out, one_spec = alignment_step({key: M}, weights, spectra, inputs, spectral_weight, reduction)
        (one_out + spectral_weight * one_spec).backward()
        l_out, l_spec = l_out + one_out.detach(), l_spec + one_spec.detach()
    return l_out, l_spec


def source_dtype(option: str, device) -> torch.dtype:
    """`source_dtype` as a torch dtype: `auto` is bfloat16 on a CUDA device that supports it."""
    if option == "auto":
        cuda = torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda else torch.float32
    return getattr(torch, option)


def init_gene(w: Tensor, r: int, generator: torch.Generator) -> Tensor:
    """Random M whose block products have W's output scale: Var(M_ij) = Var(W) d_in / r.
    (The paper does not say how M starts; this keeps L_out's first steps well scaled.)"""
    d_in = w.shape[1]
    std = float(w.float().std()) * math.sqrt(d_in / r)
    return torch.randn(r, r, generator=generator) * std


# With `experts_per_layer` N > 1 a standard MoE's layer has N gene matrices per kind; the paper
# initialises one FFN per layer and does not say from which (issue 18 item 13). "first": the most
# used expert's, the others unused; "side_by_side": the student's FFN neurons split into N
# contiguous groups, group i scaled from expert i (gate/up rows, down columns alike, so each
# neuron keeps its own gate, up and down), as an MoE's experts sit side by side in its pool.
EXPERTS_INIT = ("first", "side_by_side")
# DeepSeekMoE-16B stores its two shared experts as one FFN of 2 x 1,408 neurons: "fused" aligns
# it as one weight per kind; "per_expert" one gene matrix per shared expert (issue 18 item 13),
# which `experts_init` then takes like routed experts (the first, or side by side)
SHARED_GENES = ("fused", "per_expert")


def side_by_side(Ms: list[Tensor], kind: str, init: Tensor, scale) -> Tensor:
    """The student's `kind` weight (`init`'s shape) from N experts' genes, one neuron group each;
    `scale(M, block_init)` fills one block."""
    axis = 1 if kind == "down" else 0  # down's neurons are its columns
    sizes = [len(part) for part in torch.arange(init.shape[axis]).tensor_split(len(Ms))]
    if min(sizes) == 0:
        raise HarnessError(f"masa: {len(Ms)} experts cannot share a student FFN of {init.shape[axis]} neurons")
    return torch.cat([scale(M, block) for M, block in zip(Ms, init.split(sizes, dim=axis))], dim=axis)


def truncate_or_pad(M: Tensor, p: int, q: int, init: Tensor) -> Tensor:
    """Table 4's "w.o. adaptive scaling": M cut to p x q where it is large enough, the rest
    left at the student's random init."""
    out = init.clone()
    a, b = min(p, M.shape[0]), min(q, M.shape[1])
    out[:a, :b] = M[:a, :b]
    return out


# the options that name one of a few readings, checked when the options are read
CHOICES = {"scaling": ("adaptive", "truncate"), "spectral_reduction": SPECTRAL_REDUCTIONS,
           "experts_init": EXPERTS_INIT, "shared_genes": SHARED_GENES,
           "source_dtype": ("auto", "float32", "bfloat16")}


class MASA:
    """Gene matrices aligned to a source's FFN weights, scaled into a Llama student's FFNs."""

    label = "MASA"
    # read by init_student alone: variants differing only here share one extraction
    init_options = ("scaling", "rank_fraction", "layer_map", "rescale", "experts_init")

    def options(self, ctx) -> dict:
        opts = resolve_options("masa", DEFAULTS, ctx)
        parse_size(opts["size"])  # a misspelt option stops before the source loads
        for name, allowed in CHOICES.items():
            if opts[name] not in allowed:
                raise HarnessError(f"masa: {name} {opts[name]!r} is not one of {', '.join(allowed)}")
        return opts

    def extract(self, ctx) -> dict:
        import numpy as np
        from safetensors.torch import save_file
        from tqdm import tqdm

        from harness.data.batches import PretrainBatches
        from harness.training.board import Board

        opts = self.options(ctx)
        source = ctx.source.load(ctx.device, source_dtype(opts["source_dtype"], ctx.device))
        torch.manual_seed(ctx.seed)
        tokens = ctx.data.tokens if opts["domain"] is None else ctx.data.domain_tokens(opts["domain"])
        seq_len = min(ctx.data.seq_len, source.config.max_position_embeddings)
        batches = PretrainBatches(np.asarray(tokens), seq_len, opts["align_batch"], opts["align_tokens"], ctx.seed)

        choice, freq = None, None
        if routed_only(source):
            freq = expert_frequencies(source, ctx.data.task_batches(opts["count_windows"]))
            choice = {l: c.argsort(descending=True, stable=True)[:opts["experts_per_layer"]].tolist()
                      for l, c in freq.items()}
        weights = ffn_weights(source, choice, opts["shared_genes"])
        source_params = sum(p.numel() for p in source.parameters())
        r = sized_ranks(weights, opts["size"], opts["ratio"], source_params)
        gen = torch.Generator().manual_seed(ctx.seed)
        genes = {w.key: torch.nn.Parameter(init_gene(w.weight, r[w.key], gen).to(ctx.device)) for w in weights}
        frozen = {w.key: w.weight for w in weights}
        spectra = {w.key: log_spectrum(w.weight, r[w.key]) for w in weights}
        opt = torch.optim.Adam(genes.values(), lr=opts["lr"])
        history = []
        desc = f"masa align {ctx.source.name}"
        board = Board(ctx.work_dir, desc)  # the alignment's curves in TensorBoard, beside the genes
        bar = tqdm(range(batches.steps), desc=desc, unit="step", mininterval=2.0)
        for step in bar:
            xs = _mlp_inputs(source, batches.batch(step)["input_ids"].to(ctx.device))
            with torch.no_grad():
                per_ffn = {w.ffn: ffn_inputs(source, w.layer, w.expert, xs[w.layer], w.shared)
                           for w in weights if w.kind == "gate"}
                inputs = {w.key: per_ffn[w.ffn][w.kind] for w in weights}
            opt.zero_grad(set_to_none=True)
            l_out, l_spec = aligned_backward(genes, frozen, spectra, inputs, opts["spectral_weight"],
                                             opts["spectral_reduction"])
            loss = l_out + opts["spectral_weight"] * l_spec
            if not torch.isfinite(loss):
                raise HarnessError(f"masa: alignment loss is {loss.item()} at step {step}; lower `lr`")
            opt.step()
            record = {"step": step + 1, "l_out": l_out.item(), "l_spec": l_spec.item(), "loss": loss.item()}
            history.append(record)
            board.write(record)
            bar.set_postfix(l_out=f"{record['l_out']:.3g}", l_spec=f"{record['l_spec']:.3g}")
        bar.close()
        board.close()
        save_file({k: v.detach().cpu().contiguous() for k, v in genes.items()}, ctx.work_dir / GENES_FILE)
        (ctx.work_dir / "align_log.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        return {"r": r, "ratio": opts["ratio"], "size": opts["size"], "genes": gene_totals(r, source_params),
                "spectral_weight": opts["spectral_weight"],
                "source_layers": len(source.model.layers), "weights": [w.key for w in weights],
                "experts": choice, "expert_counts": {l: c.tolist() for l, c in freq.items()} if freq else None,
                "tokens": batches.tokens_seen, "initial": history[0], "final": history[-1],
                "options": opts}

    def init_student(self, config, artifact, ctx):
        from safetensors.torch import load_file

        from harness.io import read_json, reading
        from harness.models.build import build_model

        opts = self.options(ctx)
        if artifact is None or not (artifact / GENES_FILE).is_file():
            raise HarnessError(f"masa: no gene matrices in {artifact}; run the extract stage first")
        manifest = read_json(artifact / "manifest.json")
        with reading(artifact / GENES_FILE, "gene matrices"):
            genes = load_file(artifact / GENES_FILE)
        student = build_model(config, ctx.seed)
        by_layer: dict[int, dict[str, list[Tensor]]] = {}
        for key in manifest["weights"]:
            parts = key.split(".")
            by_layer.setdefault(int(parts[1]), {}).setdefault(parts[-1], []).append(genes[key])
        src_of = layer_map(manifest["source_layers"], config.num_hidden_layers, opts["layer_map"])
        def scale(M: Tensor, init: Tensor) -> Tensor:
            p, q = init.shape  # (out, in)
            if opts["scaling"] == "truncate":
                return truncate_or_pad(M, p, q, init)
            return adaptive_scale(M.double(), p, q, max(1, round(opts["rank_fraction"] * M.shape[-1]))).float()

        with torch.no_grad():
            for k, layer in enumerate(student.model.layers):
                for kind in KINDS:
                    linear = getattr(layer.mlp, f"{kind}_proj")
                    Ms = by_layer[src_of[k]][kind]  # the layer's experts, most used first (one for dense, shared)
                    if opts["experts_init"] == "first":
                        new = scale(Ms[0], linear.weight)
                    else:
                        new = side_by_side(Ms, kind, linear.weight, scale)
                    if opts["rescale"]:
                        new = new * (linear.weight.std() / new.std())
                    linear.weight.copy_(new)
        return student
