"""Method names -> plugin classes, resolved lazily (lm-eval's registry style).

The table itself lives in `methods/registry.py` as plain strings, so listing
or validating names imports no plugin and no torch. Packages outside this
repository add methods through the `harness.methods` entry-point group, with
the value `"module:Class"`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from harness.api import plugin_source
from harness.errors import HarnessError
from harness.api.plugins import Registry, did_you_mean, load_target

TABLE_MODULE = "methods.registry"


@dataclass(frozen=True)
class MethodSpec:
    """Where a method's class lives and the options its variant fixes."""

    name: str
    target: str  # "module:Class"
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None  # table label; defaults to the class's `label`
    finetune: bool = True  # False: the adapted student is evaluated without SFT (zero epochs)
    parts: tuple[str, ...] = ()  # a composition (harness/api/compose.py): the methods whose hooks it takes


def _parse(name: str, entry: Any) -> MethodSpec:
    if isinstance(entry, MethodSpec):
        return entry
    if isinstance(entry, str):
        return MethodSpec(name, entry)
    if isinstance(entry, dict) and "compose" in entry:
        return MethodSpec(name, "harness.api.compose:Composite", label=entry.get("label"),
                          finetune=entry.get("finetune", True), parts=tuple(entry["compose"]))
    if isinstance(entry, dict) and "target" in entry:
        return MethodSpec(name, entry["target"], dict(entry.get("options", {})), entry.get("label"),
                          entry.get("finetune", True))
    raise HarnessError(f"registry entry {name!r} must be 'module:Class' or a dict with 'target' or 'compose'")


METHODS = Registry("method", "harness.methods", lambda: importlib.import_module(TABLE_MODULE).METHODS, _parse)


def registry_table() -> dict[str, MethodSpec]:
    return METHODS.table()


def method_names() -> list[str]:
    return sorted(registry_table())


def family(name: str) -> str:
    """The plain entry a variant belongs to (same class, no fixed options, fine-tuned); itself otherwise."""
    spec = method_spec(name)
    if spec.parts:
        return name
    for other in registry_table().values():
        if other.target == spec.target and not other.options and other.finetune and not other.parts:
            return other.name
    return name


def method_label(name: str) -> str:
    """A method's table label from the registry (no plugin import): its `label`, else its name."""
    return method_spec(name).label or name


def method_spec(name: str) -> MethodSpec:
    return METHODS.entry(name)


def method_options(options: dict[str, dict], name: str) -> dict[str, Any]:
    """The options a method's jobs see, from the config's `method_options`: its family's under its
    own; for a composition, each part's under the composition's entry for that part."""
    spec = method_spec(name)
    own = options.get(name, {})
    if spec.parts:
        unknown = sorted(set(own) - set(spec.parts))
        if unknown:
            raise HarnessError(f"method_options.{name}: {unknown[0]!r} is not one of its parts "
                               f"({', '.join(spec.parts)}); give each part's options under its name")
        return {p: {**method_options(options, p), **own.get(p, {})} for p in spec.parts}
    return {**options.get(family(name), {}), **own}


def check_composition(name: str, options: dict[str, dict]) -> None:
    """For a composition: its parts exist, no two claim one hook, its options name its parts
    (read from the parts' source files: nothing is imported)."""
    if method_spec(name).parts:
        method_hooks(name)
        method_options(options, name)


def effective_options(name: str, options: dict[str, dict]) -> dict[str, Any] | None:
    """The options a (non-composite) method's jobs run with: its defaults, the config's, the
    variant's fixed ones (`harness.stages.build`'s order); None where the defaults are not literals."""
    spec = method_spec(name)
    defaults = None if spec.parts else plugin_source.option_defaults(spec.target)
    return None if defaults is None else {**defaults, **method_options(options, name), **spec.options}


def same_method(name: str, options: dict[str, dict]) -> str:
    """The method whose jobs a row of `name` runs: its family when the variant runs with exactly the
    family's options (the paper's `masa-ratio23` is `masa` at its default ratio 0.23), so that a
    duplicate row shares every extraction, student and evaluation; itself otherwise."""
    plain = family(name)
    if plain == name or method_spec(name).finetune != method_spec(plain).finetune:
        return name
    mine = effective_options(name, options)
    return plain if mine is not None and mine == effective_options(plain, options) else name


def artifact_method(name: str, options: dict[str, dict]) -> str:
    """The method whose `extract` artifact a student of `name` is built from: its own; its
    family's where the two differ only in options `init_student` alone reads (the class's
    `init_options`: Table 4's `masa-no-scaling` extracts what `masa` does); or, for a composition
    whose extracting part runs with that part's own options (none overridden by the composition's
    `method_options`), that part's. The extraction would be the same files, so prune-then-distill
    reads Pruning-EEP's search instead of repeating it."""
    from harness.api.compose import hook_owners

    spec = method_spec(name)
    if not spec.parts:
        plain = family(name)
        init_only = plugin_source.init_options(spec.target)
        mine, theirs = effective_options(name, options), effective_options(plain, options)
        if plain != name and init_only and mine is not None and theirs is not None and \
                {k: v for k, v in mine.items() if k not in init_only} == \
                {k: v for k, v in theirs.items() if k not in init_only}:
            return plain
        return name
    owner = hook_owners(name, {p: method_hooks(p) for p in spec.parts}).get("extract")
    if owner is None or method_options(options, name)[owner] != method_options(options, owner):
        return name
    return owner


def check_options(name: str, options: dict[str, dict]) -> None:
    """The config's `method_options` for `name` (each part's, for a composition) are options the
    method accepts: a one-line error naming the unknown one, before any job runs (the method's own
    check, `harness.api.method.resolve_options`, would stop its first job, possibly hours in)."""
    spec = method_spec(name)
    if spec.parts:
        for part, own in method_options(options, name).items():
            _check_option_names(f"{name}.{part}", part, own)
    else:
        _check_option_names(name, name, options.get(name, {}))


def _check_option_names(where: str, name: str, given: dict) -> None:
    accepted = option_names(name)
    unknown = sorted(set(given) - accepted) if accepted is not None else []
    if unknown:
        raise HarnessError(f"method_options.{where}: unknown option {unknown[0]!r}"
                           f"{did_you_mean(unknown[0], accepted)} Options of "
                           f"{name!r}: {', '.join(sorted(accepted)) or 'none'}")


def option_names(name: str) -> frozenset[str] | None:
    """The options a (non-composite) method accepts, read from its source; None when unreadable."""
    return plugin_source.option_names(method_spec(name).target)


def method_hooks(name: str) -> frozenset[str]:
    """The hooks the method implements: read from its class's source file (harness.api.plugin_source:
    no torch, so planning the DAG stays fast), or from the imported class where the source does
    not say; a composition's are its parts' (one part per hook)."""
    from harness.api.compose import hook_owners

    spec = method_spec(name)
    if spec.parts:
        return frozenset(hook_owners(name, {p: method_hooks(p) for p in spec.parts}))
    found = plugin_source.class_hooks(spec.target)
    if found is None:
        from harness.api.method import hooks_of

        found = hooks_of(_method_class(name))
    return found


def method_code(name: str) -> str:
    """A fingerprint of the code a method's jobs run from the plugins: its class's file, its bases',
    and the plugin modules they import (a composition: its parts'). Part of every method stage's
    config slice, so that editing a method reruns that method's jobs (the core's own version is
    recorded in each output's run.json instead)."""
    import hashlib

    spec = method_spec(name)
    if spec.parts:
        return hashlib.sha256("".join(method_code(p) for p in spec.parts).encode()).hexdigest()[:16]
    files = plugin_source.code_files(spec.target) or ()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _method_class(name: str):
    spec = method_spec(name)
    if spec.parts:
        from harness.api.compose import composite_class

        return composite_class(name, {p: _method_class(p) for p in spec.parts},
                               spec.label or " + ".join(method_label(p) for p in spec.parts))
    return load_target("method", name, spec.target)


def implements(name: str, hook_name: str) -> bool:
    """Whether the plugin registered as `name` has the hook (see `method_hooks`)."""
    from harness.api.method import HOOKS

    if hook_name not in HOOKS:
        raise ValueError(f"unknown hook {hook_name!r}; hooks are {', '.join(HOOKS)}")
    return hook_name in method_hooks(name)


def shares_pretraining(name: str) -> bool:
    """Whether the method's pre-trained student is Scratch's: it shapes neither the initial
    student nor the pre-training loss (e.g. a method that only adapts before SFT), so its
    rows start from the very checkpoint the Scratch row fine-tunes."""
    return not any(implements(name, h) for h in ("extract", "init_student", "pretrain_loss"))


def plain_method() -> str:
    """The registered method that implements no hook and is fine-tuned (Scratch): the student
    every method that `shares_pretraining` starts its SFT from."""
    for name, spec in registry_table().items():
        if spec.finetune and not spec.options and not spec.parts and not method_hooks(name):
            return name
    raise HarnessError("the registry has no plain method (one with no hooks): methods that only adapt need it")


def load_method(name: str):
    """Instantiate the plugin registered as `name`; its variant options are on `.variant_options`."""
    spec = method_spec(name)
    method = _method_class(name)()
    method.name = name
    method.variant_options = dict(spec.options)
    if spec.parts:
        method.parts = {p: load_method(p) for p in spec.parts}
    return method
