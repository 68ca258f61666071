"""The house rules of the code's layout, checked from the source: no import cycle, the core
package (`harness/`) never imports the plugins (`reports/`, `methods/`, `baselines/`) at module
level, and planning a run imports no torch."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "reports", "methods", "baselines", "evals")
PLUGINS = ("reports", "methods", "baselines")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for f in (REPO / package).rglob("*.py"):
            name = ".".join(f.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = f
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, module_level_only: bool) -> list[str]:
    """Every module an import statement names (`from a import b`: a.b, whose owner is a itself
    when b is not a module), skipping
    `if TYPE_CHECKING:` blocks (not run) and, when asked, every import inside a function."""
    names = []
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node) or (module_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                                ast.ClassDef))):
            continue
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{a.name}" for a in node.names]
        names += _imports(node, module_level_only)
    return names


def _graph(module_level_only: bool = False) -> dict[str, set[str]]:
    modules = _modules()

    def owner(name):  # the project module an imported name lives in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        deps = {owner(n) for n in _imports(ast.parse(path.read_text()), module_level_only)}
        graph[name] = deps - {name, ""}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None (depth-first search, colouring the path)."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_imports_no_plugin_at_module_level():
    graph = _graph(module_level_only=True)
    upward = sorted((m, d) for m, deps in graph.items() if m.startswith("harness") for d in deps
                    if d.split(".")[0] in PLUGINS)
    assert not upward, f"harness/ imports a plugin package at module level: {upward}"


def test_planning_imports_no_torch():
    """What Snakemake runs to plan (config, grid, registries, every report's declaration) stays
    torch-free, so a dry run and a config error are fast."""
    code = ("import sys; from harness.workflow.config import load_profile; from harness.workflow.grid import Grid; "
            "from harness.workflow.report import enabled_reports; import harness.workflow.commands, harness.cli.main; "
            "[r.cfg(Grid(c)) for c in [load_profile('smoke')] for r in enabled_reports(Grid(c))]; "
            "print(sorted(m for m in ('torch', 'transformers', 'lm_eval') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_every_document_the_code_cites_is_in_the_repo():
    """The code cites its own docs (`docs/<name>.md`), never a document outside the repo, and the
    README's links lead to files that exist; the README stays a front door."""
    import re

    cited, outside = set(), []
    for path in [*(f for p in (*PACKAGES, "rules", "config", "tests") for f in (REPO / p).rglob("*")
                   if f.suffix in (".py", ".smk", ".yaml")), REPO / "Snakefile"]:
        text = path.read_text(encoding="utf-8")
        cited |= set(re.findall(r"docs/[\w.-]+\.md", text))
        outside += [f"{path.relative_to(REPO)}: {m}" for m in re.findall(r"\b(?:METHODS|SIGNAL|DESIGN)\.md", text)
                    if path.name != "test_layout.py"]
    assert not outside, outside
    assert cited and all((REPO / c).is_file() for c in cited), sorted(c for c in cited if not (REPO / c).is_file())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs|reports|config)/[^)#]+)", readme)
    assert links and all((REPO / link).exists() for link in links), [link for link in links
                                                                        if not (REPO / link).exists()]
    assert len(readme.splitlines()) <= 300


def test_the_rules_build_no_path_by_concatenation():
    """Every path a rule names comes from the grid's named templates (`harness.workflow.grid.PATHS`,
    `LOGS`): none is pieced together in `rules/` or the Snakefile."""
    import re

    glued = re.compile(r"""\+\s*f?["'][^"']*/|["'][^"']*/["']\s*\+|\b(?:R|L|STUDENT)\s*\+""")
    found = [f"{path.name}:{n}: {line.strip()}" for path in [*(REPO / "rules").glob("*.smk"), REPO / "Snakefile"]
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if glued.search(line.split("#")[0]) and "workflow.basedir" not in line]
    assert not found, found


# The core package's subpackages by concern, lowest first: a module imports, at module level, only
# from its own layer or a lower one (nothing imports upward). `api`, `analysis` and `workflow` are
# what planning reads: nothing they import at module level, however indirectly, imports torch.
LAYERS = (
    ("harness", "harness.errors", "harness.io"),
    ("harness.api", "harness.analysis"),
    ("harness.data",),
    ("harness.models",),
    ("harness.training",),
    ("harness.stages",),
    ("harness.workflow",),
    ("harness.cli", "harness.__main__"),
)
PLANNING = ("harness.api", "harness.analysis", "harness.workflow")
HEAVY = ("torch", "transformers", "lm_eval", "peft", "torch_pruning")


def _layer(module: str) -> int | None:
    ranks = [(len(prefix), rank) for rank, prefixes in enumerate(LAYERS) for prefix in prefixes
             if module == prefix or module.startswith(prefix + ".")]
    return max(ranks)[1] if ranks else None


def test_every_core_module_has_a_layer_and_nothing_imports_upward():
    graph = _graph(module_level_only=True)
    core = [m for m in graph if m.startswith("harness")]
    assert all(_layer(m) is not None for m in core), [m for m in core if _layer(m) is None]
    upward = sorted(f"{m} -> {d}" for m in core for d in graph[m]
                    if d.startswith("harness") and _layer(d) > _layer(m))
    assert not upward, upward


def test_the_planning_packages_import_no_torch_even_indirectly():
    modules, graph = _modules(), _graph(module_level_only=True)
    heavy = {m for m, path in modules.items()
             if any(n.split(".")[0] in HEAVY for n in _imports(ast.parse(path.read_text()), True))}
    seen, todo = set(), [m for m in modules if m.startswith(PLANNING)]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [d for d in graph[m] if d.startswith("harness")]
    assert heavy & {m for m in modules if m.startswith("harness.models")}  # the check sees torch where it is
    assert not seen & heavy, sorted(seen & heavy)


def test_the_layer_check_sees_an_upward_import():
    assert _layer("harness.data.world.generate") == _layer("harness.data") < _layer("harness.workflow.grid")
    assert _layer("harness.errors") == 0 and _layer("harness.cli.main") == len(LAYERS) - 1


def test_no_function_is_longer_than_80_lines_without_saying_why():
    """Small functions: a body (its docstring aside) over 80 lines says why in its docstring
    ("Long: ...")."""
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                first = node.body[1] if doc and len(node.body) > 1 else node.body[0]
                if node.end_lineno - first.lineno + 1 > 80 and "Long:" not in doc:
                    long.append(f"{name}.{node.name}")
    assert not long, long
