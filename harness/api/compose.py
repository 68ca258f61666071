"""Composite methods: one table row that takes each hook from one of its parts.

Prune-then-distill (the Minitron recipe, docs/methods.md) is Pruning-EEP's `extract` and
`init_student` followed by Distillation's `pretrain_loss`: registered as
`{"compose": ["pruning-eep", "distill"]}`, it is those two methods run in turn, not a third
copy of their code. Each hook belongs to exactly one part; two parts that both implement a
hook are a one-line error, raised when the config is validated, before any job runs.

Every part reads its own options (its family's `method_options`, then its own), and the
composite's `method_options` may override them per part: `{prune-distill: {distill: {alpha: 1}}}`.
The row's one source serves every part (for prune-then-distill, the teacher is the pruned
model's parent, as in Minitron).
"""

from __future__ import annotations

import dataclasses

from harness.errors import HarnessError
from harness.api.method import HOOKS, hooks_of


def hook_owners(name: str, parts: dict[str, frozenset[str]]) -> dict[str, str]:
    """{hook: the part implementing it}, given each part's hooks; a hook claimed twice is a
    one-line error."""
    owners: dict[str, str] = {}
    for part, hooks in parts.items():
        for hook in HOOKS:
            if hook in hooks:
                if hook in owners:
                    raise HarnessError(f"method {name!r}: {owners[hook]!r} and {part!r} both implement `{hook}`; "
                                       f"a composition takes each hook from one method")
                owners[hook] = part
    return owners


def _delegate(hook: str, part: str):
    def call(self, *args):
        *rest, ctx = args  # every hook takes the context last
        method = self.parts[part]
        own = {**ctx.options.get(part, {}), **method.variant_options}
        return getattr(method, hook)(*rest, dataclasses.replace(ctx, options=own))

    call.__name__ = hook
    call.__doc__ = f"`{part}`'s `{hook}`, with `{part}`'s options."
    return call


class Composite:
    """Base of the classes `composite_class` builds; `parts` holds the loaded part methods."""

    parts: dict[str, object]


def composite_class(name: str, parts: dict[str, type], label: str) -> type:
    """A method class with exactly the hooks of its parts, each delegated to its owner."""
    owners = hook_owners(name, {p: hooks_of(cls) for p, cls in parts.items()})
    attrs = {hook: _delegate(hook, part) for hook, part in owners.items()}
    return type(f"Composite[{name}]", (Composite,), {**attrs, "label": label, "owners": owners,
                                                      "part_names": tuple(parts)})
