"""Typed views of a decoder layer's FFN and attention weights, the same for every architecture.

A source's FFN is one of: a dense gated FFN (OLMo, Llama); routed experts with a router
(OLMoE); shared experts plus routed experts (DeepSeekMoE). Every method that reads a
source's FFN (MASA, Pruning-EEP, LaTen, Seeking, Weight Selection) reads this view, built
by the architecture's adapter (`harness.models.archs`), never the modules' attribute names.

All weights keep PyTorch's `Linear` orientation, (d_out, d_in): a gated FFN computes
`down @ (act(gate @ x) * (up @ x))`. The tensors are views of the model's parameters
(or of whatever `view` maps them to: a gradient, a sensitivity), not copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from harness.errors import HarnessError

if TYPE_CHECKING:  # adapters are read at config validation, which does not import torch
    from torch import Tensor

Route = Callable[["Tensor"], tuple["Tensor", "Tensor"]]  # x (N, H) -> routing weights (N, k), expert ids (N, k)


def identity(p: Tensor) -> Tensor:
    return p


@dataclass(frozen=True)
class GatedFFN:
    """One gated FFN: a dense FFN, a block of shared experts, or one routed expert."""

    gate: Tensor  # (I, H)
    up: Tensor  # (I, H)
    down: Tensor  # (H, I)
    act: Callable[[Tensor], Tensor]

    def activations(self, x: Tensor) -> Tensor:
        """act(gate x) * (up x): (N, H) -> (N, I), the inputs of `down`."""
        return self.act(x @ self.gate.T) * (x @ self.up.T)

    def __call__(self, x: Tensor) -> Tensor:
        return self.activations(x) @ self.down.T


@dataclass(frozen=True)
class RoutedExperts:
    """E experts of equal width I, each token sent to k of them with routing weights."""

    gate: Tensor  # (E, I, H)
    up: Tensor  # (E, I, H)
    down: Tensor  # (E, H, I)
    act: Callable[[Tensor], Tensor]
    route: Route

    @property
    def n(self) -> int:
        return self.gate.shape[0]

    def expert(self, e: int) -> GatedFFN:
        return GatedFFN(self.gate[e], self.up[e], self.down[e], self.act)

    def coefficients(self, x: Tensor) -> Tensor:
        """(N, E): each token's routing weight on every expert, 0 where it is not routed."""
        import torch

        weights, index = self.route(x)
        coef = torch.zeros(x.shape[0], self.n, dtype=x.dtype, device=x.device)
        return coef.scatter_(1, index, weights.to(x.dtype))

    def activations(self, x: Tensor) -> Tensor:
        """(N, E*I): expert e's activations times the token's routing weight on e, experts side by side."""
        import torch

        # one product with gate and up stacked, as the fused experts' forward computes it
        gate, up = torch.einsum("nh,eih->nei", x, torch.cat([self.gate, self.up], dim=1)).chunk(2, dim=-1)
        return (self.act(gate) * up * self.coefficients(x)[..., None]).reshape(x.shape[0], -1)

    def __call__(self, x: Tensor) -> Tensor:
        return self.activations(x) @ self.pool_down().T

    def pool_down(self) -> Tensor:
        """(H, E*I): the experts' down columns side by side, in `activations`' order."""
        return self.down.permute(1, 0, 2).reshape(self.down.shape[1], -1)


@dataclass(frozen=True)
class FFNView:
    """A layer's FFN as its parts. Its *neuron pool* is every part's neurons side by side (dense
    or shared first, then routed expert 0..E-1): neuron i has a gate row, an up row and a down
    column, and `pool()["down"] @ activations(x).T` is the FFN's output."""

    dense: GatedFFN | None = None
    shared: GatedFFN | None = None
    routed: RoutedExperts | None = None
    shared_count: int = 1  # experts fused side by side in `shared` (DeepSeekMoE-16B: 2 of 1,408)

    def __post_init__(self):
        if self.dense is not None and (self.shared is not None or self.routed is not None):
            raise ValueError("an FFN is dense or mixture-of-experts, not both")
        if self.dense is None and self.routed is None:
            raise ValueError("an FFN view needs a dense FFN or routed experts")

    @property
    def whole(self) -> GatedFFN | None:
        """The part every token passes through whole: the dense FFN, else the shared experts."""
        return self.dense if self.dense is not None else self.shared

    def shared_experts(self) -> list[GatedFFN]:
        """The shared experts one by one: `shared`'s neurons in `shared_count` equal groups
        (views, as `shared` is); their outputs sum to `shared`'s."""
        s, n = self.shared, self.shared_count
        if s is None:
            return []
        width = s.gate.shape[0] // n
        return [GatedFFN(s.gate[i * width:(i + 1) * width], s.up[i * width:(i + 1) * width],
                         s.down[:, i * width:(i + 1) * width], s.act) for i in range(n)]

    def pool(self) -> dict[str, Tensor]:
        """{"gate": (P, H), "up": (P, H), "down": (H, P)} of the neuron pool."""
        import torch

        parts = []
        if self.whole is not None:
            parts.append((self.whole.gate, self.whole.up, self.whole.down))
        if self.routed is not None:
            r = self.routed
            parts.append((r.gate.reshape(-1, r.gate.shape[-1]), r.up.reshape(-1, r.up.shape[-1]), r.pool_down()))
        return {"gate": torch.cat([p[0] for p in parts]), "up": torch.cat([p[1] for p in parts]),
                "down": torch.cat([p[2] for p in parts], dim=1)}

    def activations(self, x: Tensor) -> Tensor:
        """(N, P): each pool neuron's routing coefficient (1 outside routed experts) times its activation."""
        import torch

        return torch.cat([p.activations(x) for p in (self.whole, self.routed) if p is not None], dim=1)

    def __call__(self, x: Tensor) -> Tensor:
        """The FFN's output for inputs x (N, H), rebuilt from the view."""
        return sum(p(x) for p in (self.whole, self.routed) if p is not None)


def gated(module, view: Callable[[Tensor], Tensor] = identity) -> GatedFFN:
    """A module with `gate_proj`, `up_proj`, `down_proj` Linears and `act_fn` (Llama's MLP and its kin)."""
    return GatedFFN(view(module.gate_proj.weight), view(module.up_proj.weight), view(module.down_proj.weight),
                    module.act_fn)


def fused_experts(moe, view: Callable[[Tensor], Tensor] = identity) -> RoutedExperts:
    """transformers 5's fused experts: `experts.gate_up_proj` (E, 2I, H) with gate on the first I
    rows (the forward `chunk`s the product in two), `experts.down_proj` (E, H, I), and a router
    `gate` returning (logits, weights, ids). The router is looked up on each call, so a method
    that swaps it (Pruning-EEP) is seen by views built before."""
    gate_up, down = view(moe.experts.gate_up_proj), view(moe.experts.down_proj)
    inter = gate_up.shape[1] // 2
    return RoutedExperts(gate_up[:, :inter], gate_up[:, inter:], down, moe.experts.act_fn,
                         lambda x: tuple(moe.gate(x)[1:]))


def check_claimed(module, claimed: set[str], where: str, adapter: str) -> None:
    """Refuse a module holding parameters the view does not read: a layout the adapter does not
    know (Qwen2-MoE's `shared_expert` under an OLMoE adapter) must not pass as a smaller FFN."""
    extra = sorted(n for n, _ in module.named_parameters() if n not in claimed)
    if extra:
        raise HarnessError(f"unknown FFN layout at {where} ({type(module).__name__}): the {adapter} adapter does "
                           f"not read {', '.join(extra)}")


def attention_weights(attn, names: tuple[str, ...], view: Callable[[Tensor], Tensor] = identity) -> dict[str, Tensor]:
    """{Llama module name: weight} of the attention projections that exist in `attn` under those names."""
    return {n: view(getattr(attn, n).weight) for n in names if hasattr(attn, n)}
