"""What a method class declares, read from its source file without importing it.

Planning the workflow needs two facts of every method in the config: which hooks its class
implements (they decide the DAG: an artifact to extract, a pre-training of its own) and which
options it accepts (a typo in `method_options` must fail before any job, not hours in). Importing
a method imports torch and transformers (~5 s); reading its file with `ast` takes milliseconds.

The reading follows the class's bases through the module's imports. A method's options are the
keys of the `DEFAULTS` mapping its class body sets (or a base's), else its module's `DEFAULTS`
(else none), keys spread from another `DEFAULTS` (`{**lora.DEFAULTS, ...}`) included: the one
convention every plugin follows, checked for each registered method against the imported class
(tests/methods/test_method_contract.py). Where the source cannot be read this way (a base built at run
time, a mapping built by a call), the functions return None and the caller imports the class.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path

from harness.api.method import HOOKS

_BUILTIN_BASES = {"object", "Protocol", "Generic"}


class Unreadable(Exception):
    """The source does not say (statically) what was asked."""


@lru_cache(maxsize=None)
def _module(name: str) -> tuple[ast.Module, str]:
    """(the parsed module, its package) found on the import path without executing it (a parent
    package's `__init__.py` does run: `methods` and `baselines` import nothing heavy)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise Unreadable(name)
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8")), spec.parent or ""


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = _module(module)[1].split(".")
    base = package[:len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _resolve(module: str, name: str) -> tuple[str, ast.AST]:
    """(module, node) where `name`, a top-level name of `module`, is defined: a class, an
    assignment, or the module an `import` binds."""
    tree = _module(module)[0]
    for node in reversed(tree.body):  # the last binding wins, as at run time
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return module, node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            if node.value is None:
                raise Unreadable(f"{module}.{name}")
            return module, node.value
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = _absolute(module, node)
                    try:
                        return _resolve(source, alias.name)
                    except Unreadable:
                        return f"{source}.{alias.name}", ast.Module(body=[], type_ignores=[])  # a submodule
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (alias.asname or alias.name.partition(".")[0]) == name:
                    return (alias.name if alias.asname else name), ast.Module(body=[], type_ignores=[])
    raise Unreadable(f"{module}.{name}")


def _expr(module: str, node: ast.AST) -> tuple[str, ast.AST]:
    """What a `Name` or `module.Name` expression refers to."""
    if isinstance(node, ast.Name):
        return _resolve(module, node.id)
    if isinstance(node, ast.Attribute):
        owner, target = _expr(module, node.value)
        if isinstance(target, ast.Module):  # `lora.DEFAULTS` where `from harness import lora`
            return _resolve(owner, node.attr)
    raise Unreadable(ast.unparse(node))


def _class(target: str) -> tuple[str, ast.ClassDef]:
    module, _, name = target.partition(":")
    where, node = _resolve(module, name)
    if not isinstance(node, ast.ClassDef):
        raise Unreadable(target)
    return where, node


def _mro(module: str, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
    """The class and its bases, depth first (single inheritance is all the plugins use)."""
    chain = [(module, cls)]
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in _BUILTIN_BASES:
            continue
        where, node = _expr(module, base)
        if not isinstance(node, ast.ClassDef):
            raise Unreadable(ast.unparse(base))
        chain += _mro(where, node)
    return chain


def _body_names(cls: ast.ClassDef) -> dict[str, ast.AST]:
    """{name: node} of what the class body binds (methods and class attributes)."""
    names: dict[str, ast.AST] = {}
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names[t.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names[node.target.id] = node.value
    return names


def _bound(target: str, name: str) -> tuple[str, ast.AST] | None:
    """(module, node) of the first class in the MRO that binds `name`."""
    for module, cls in _mro(*_class(target)):
        node = _body_names(cls).get(name)
        if node is not None:
            return module, node
    return None


@lru_cache(maxsize=None)
def class_hooks(target: str) -> frozenset[str] | None:
    """The hooks the class at `target` ("module:Class") defines or inherits; None when unreadable."""
    try:
        found = set()
        for hook in HOOKS:
            bound = _bound(target, hook)
            if bound is not None and not (isinstance(bound[1], ast.Constant) and bound[1].value is None):
                found.add(hook)
        return frozenset(found)
    except (Unreadable, OSError, SyntaxError):
        return None


def _dict_display(module: str, node: ast.AST, values: bool, seen: int = 0) -> dict[str, object]:
    """{key: value} of a dict display (values None unless `values`, which needs them all literal),
    following `**NAME` spreads."""
    if seen > 8:
        raise Unreadable("DEFAULTS spreads too deep")
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _dict_display(*_expr(module, node), values, seen + 1)
    if not isinstance(node, ast.Dict):
        raise Unreadable(ast.unparse(node))
    found: dict[str, object] = {}
    for key, value in zip(node.keys, node.values):
        if key is None:
            found.update(_dict_display(module, value, values, seen + 1))
        elif isinstance(key, ast.Constant) and isinstance(key.value, str):
            try:
                found[key.value] = ast.literal_eval(value) if values else None
            except ValueError:
                raise Unreadable(ast.unparse(value)) from None
        else:
            raise Unreadable(ast.unparse(key))
    return found


def _defaults(target: str, values: bool) -> dict[str, object] | None:
    """The DEFAULTS mapping the class at `target` reads (its own or a base's, else its module's;
    none: empty), as `_dict_display`; None when unreadable."""
    try:
        bound = _bound(target, "DEFAULTS")
        if bound is None:
            try:
                bound = _resolve(_class(target)[0], "DEFAULTS")
            except Unreadable:
                return {}  # no DEFAULTS anywhere: the method takes no options
        return _dict_display(*bound, values)
    except (Unreadable, OSError, SyntaxError):
        return None


@lru_cache(maxsize=None)
def option_names(target: str) -> frozenset[str] | None:
    """The options the class at `target` accepts (see the module docstring); None when unreadable."""
    found = _defaults(target, values=False)
    return None if found is None else frozenset(found)


@lru_cache(maxsize=None)
def option_defaults(target: str) -> dict[str, object] | None:
    """The class's DEFAULTS as values, where every one is a literal; None otherwise (or unreadable)."""
    return _defaults(target, values=True)


@lru_cache(maxsize=None)
def init_options(target: str) -> frozenset[str]:
    """The options only the class's `init_student` reads (its `init_options` attribute, a literal
    tuple): variants that differ in these alone extract the same artifact. Empty when not declared."""
    try:
        bound = _bound(target, "init_options")
        return frozenset(ast.literal_eval(bound[1])) if bound else frozenset()
    except (Unreadable, OSError, SyntaxError, ValueError):
        return frozenset()


PLUGIN_PACKAGES = ("methods", "baselines", "evals")  # the project's plugin code (the core is versioned apart)


def _path(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _plugin_imports(module: str) -> set[str]:
    """The plugin modules `module` imports, anywhere in its file."""
    found = set()
    for node in ast.walk(_module(module)[0]):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [_absolute(module, node), *(f"{_absolute(module, node)}.{a.name}" for a in node.names)]
                 if isinstance(node, ast.ImportFrom) else [])
        found |= {n for n in names if n.split(".")[0] in PLUGIN_PACKAGES and _path(n) is not None}
    return found


@lru_cache(maxsize=None)
def code_files(target: str) -> tuple[Path, ...] | None:
    """The plugin source files a class's code is in: its module and its bases', and every plugin
    module they import, however indirectly; None when the class cannot be read."""
    try:
        todo = [module for module, _ in _mro(*_class(target))]
    except Unreadable:
        return None
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module not in seen and _path(module) is not None:
            seen.add(module)
            todo += _plugin_imports(module)
    return tuple(sorted(_path(m) for m in seen))
