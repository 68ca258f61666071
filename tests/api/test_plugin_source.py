"""Reading a method's hooks and options from its source, and falling back to importing it."""

import json
import subprocess
import sys
import textwrap

import pytest

from harness.api import plugin_source
from harness.workflow.config import load_profile, validate
from harness.errors import HarnessError


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A plugin package outside the repository: bases, spreads and relative imports across modules."""
    root = tmp_path / "outside_methods"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "base.py").write_text(textwrap.dedent("""
        SHARED = {"rank": 4, "alpha": 8}

        class Base:
            def adapt(self, student, task, ctx):
                return student
    """))
    (root / "child.py").write_text(textwrap.dedent("""
        from . import base
        from .base import Base as Parent

        DEFAULTS = {**base.SHARED, "steps": 3}

        class Child(Parent):
            label = "Child"
            def extract(self, ctx):
                return {}
            pretrain_loss = None  # explicitly none: not a hook

        class Own(Child):
            DEFAULTS = {"only": 1}

        Dynamic = type("Dynamic", (), {"adapt": lambda self, s, t, c: s})

        class FromCall(dict.__class__("X", (), {})):
            pass

        class CalledDefaults:
            DEFAULTS = dict(a=1)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "outside_methods"
    for cache in (plugin_source._module, plugin_source.class_hooks, plugin_source.option_names):
        cache.cache_clear()


def test_hooks_follow_bases_across_modules(package):
    assert plugin_source.class_hooks(f"{package}.child:Child") == {"adapt", "extract"}
    assert plugin_source.class_hooks(f"{package}.child:Own") == {"adapt", "extract"}
    assert plugin_source.class_hooks(f"{package}.base:Base") == {"adapt"}


def test_options_are_the_class_or_module_defaults_with_spreads(package):
    assert plugin_source.option_names(f"{package}.child:Child") == {"rank", "alpha", "steps"}
    assert plugin_source.option_names(f"{package}.child:Own") == {"only"}  # the class's own, not the module's
    assert plugin_source.option_names(f"{package}.base:Base") == frozenset()  # no DEFAULTS: no options


def test_what_the_source_does_not_say_is_none(package):
    assert plugin_source.class_hooks(f"{package}.child:Dynamic") is None
    assert plugin_source.class_hooks(f"{package}.child:FromCall") is None
    assert plugin_source.option_names(f"{package}.child:CalledDefaults") is None
    assert plugin_source.class_hooks(f"{package}.missing:Nothing") is None


def test_the_registry_imports_a_class_its_source_does_not_describe(package, monkeypatch):
    from importlib.metadata import EntryPoint

    from harness.api import plugins
    from harness.api import registry

    monkeypatch.setattr(plugins, "entry_points",
                        lambda group: [EntryPoint("dyn", f"{package}.child:Dynamic", group)])
    registry.METHODS.clear()
    try:
        assert registry.implements("dyn", "adapt") and registry.shares_pretraining("dyn")
    finally:
        registry.METHODS.clear()


def test_an_unknown_method_option_fails_at_config_time_with_a_hint():
    config = load_profile("micro")
    config["method_options"]["masa"]["ratoi"] = 0.2
    with pytest.raises(HarnessError) as e:
        validate(config)
    msg = str(e.value)
    assert "method_options.masa: unknown option 'ratoi'; did you mean 'ratio'?" in msg and "\n" not in msg
    config = load_profile("micro")
    config["method_options"]["prune-distill"] = {"distill": {"alpah": 0.5}}
    with pytest.raises(HarnessError, match=r"method_options.prune-distill.distill: unknown option 'alpah'"):
        validate(config)
    config = load_profile("micro")
    config["method_options"]["scratch"] = {"lr": 1}
    with pytest.raises(HarnessError, match="Options of 'scratch': none"):
        validate(config)


def test_planning_imports_no_torch():
    """Validating every shipped profile and asking every method's hooks stays torch-free: the
    Snakefile does both for every DAG it plans."""
    code = textwrap.dedent("""
        import sys
        from harness.workflow.config import load_profile
        from harness.api.registry import method_names, shares_pretraining, implements
        for profile in ("micro", "smoke", "paper"):
            load_profile(profile)
        [shares_pretraining(m) or implements(m, "extract") for m in method_names()]
        assert "torch" not in sys.modules, "torch was imported"
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_editing_a_methods_file_changes_its_jobs_config_and_no_other_methods(tmp_path, monkeypatch):
    """The code fingerprint in every method stage's config slice: a method's file edited, its
    pre-training's slice changes (Snakemake reruns it), another method's does not."""
    from importlib.metadata import EntryPoint

    from harness.api import plugins, registry
    from harness.workflow.config import load_profile
    from harness.workflow.grid import Grid

    (tmp_path / "edited_plugin.py").write_text("from baselines.scratch import Scratch\n\n\n"
                                               "class Mine(Scratch):\n    label = 'Mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "entry_points", lambda group: [EntryPoint("mine", "edited_plugin:Mine", group)]
                        if group == "harness.methods" else [])
    registry.METHODS.clear()
    try:
        grid = Grid(load_profile("smoke"))
        shape = grid.shapes[0]
        before = {m: grid.pretrain_cfg(m, shape, grid.budget) for m in ("mine", "scratch")}
        (tmp_path / "edited_plugin.py").write_text("from baselines.scratch import Scratch\n\n\n"
                                                   "class Mine(Scratch):\n    label = 'Mine, edited'\n")
        plugin_source._module.cache_clear()
        plugin_source.code_files.cache_clear()
        after = {m: grid.pretrain_cfg(m, shape, grid.budget) for m in ("mine", "scratch")}
        assert before["mine"] != after["mine"] and before["scratch"] == after["scratch"]
        assert '"code":' in after["mine"]
    finally:
        registry.METHODS.clear()
        plugin_source._module.cache_clear()
        plugin_source.code_files.cache_clear()


def test_the_core_codes_fingerprint_follows_the_code_that_computes_numbers(tmp_path):
    """Every stage's slice carries `code_core`: an edit to a computing layer or to the evaluation
    code changes it (Snakemake reruns the jobs, a work dir started before is not resumed); an edit
    to the planner or the command line does not (it reaches jobs through their slices)."""
    from harness.io import core_code
    from harness.workflow.config import load_profile
    from harness.workflow.grid import Grid

    def tree(name, edits=()):
        root = tmp_path / name
        files = {"harness/stages/build.py": "x = 1\n", "harness/workflow/grid.py": "y = 1\n",
                 "harness/cli/main.py": "z = 1\n", "evals/rouge.py": "r = 1\n", **dict(edits)}
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return core_code(root)

    base = tree("base")
    assert tree("stage", {"harness/stages/build.py": "x = 2\n"}) != base
    assert tree("evals", {"evals/rouge.py": "r = 2\n"}) != base
    assert tree("plan", {"harness/workflow/grid.py": "y = 2\n", "harness/cli/main.py": "z = 2\n"}) == base
    assert tree("added", {"harness/models/new.py": ""}) != base

    grid = Grid(load_profile("smoke"))
    for slice_ in (grid.source_cfg("olmo"), grid.pretrain_cfg("scratch", grid.shapes[0], grid.budget)):
        assert json.loads(slice_)["code_core"] == core_code()


def test_a_variant_identical_to_its_family_shares_its_jobs_and_one_differing_in_init_only_its_extraction():
    """The paper's Table 5 `masa-ratio23` is `masa` at its default ratio: one set of jobs. Table 4's
    `masa-no-scaling` changes only how genes are scaled into the student (`MASA.init_options`): its
    own students, `masa`'s extraction. A config that moves masa's ratio splits them again."""
    from harness.api.registry import artifact_method, same_method
    from harness.workflow.grid import Grid
    from reports.tables.ablations import ablation_rows

    grid = Grid(load_profile("paper"))
    table5 = {r.label: r.method for r in ablation_rows(grid.C, "table5")}
    assert table5["23%"] == "masa" and table5["3%"] == "masa-ratio3"
    assert grid.init_inputs("masa-no-scaling", "olmo")["artifact"] == grid.init_inputs("masa", "olmo")["artifact"]
    assert grid.init_inputs("masa-no-spectral", "olmo")["artifact"].endswith("artifacts/masa-no-spectral/olmo")
    moved = {"masa": {"ratio": 0.12}}
    assert same_method("masa-ratio23", moved) == "masa-ratio23" and same_method("masa-ratio12", moved) == "masa"
    assert artifact_method("masa-no-scaling", {"masa-no-scaling": {"rank_fraction": 0.3}}) == "masa"
    assert artifact_method("masa-no-scaling", {"masa-no-scaling": {"lr": 0.1}}) == "masa-no-scaling"


def test_init_options_are_never_read_by_the_extract_hook():
    """A method's `init_options` are shared-extraction claims: its `extract` must not read them
    (read from the source: no `opts["name"]` of one inside `extract`)."""
    import ast
    import importlib
    import inspect
    import textwrap

    from harness.api.registry import method_spec, registry_table

    checked = 0
    for name in registry_table():
        target = method_spec(name).target
        claimed = plugin_source.init_options(target)
        if not claimed:
            continue
        module, _, cls = target.partition(":")
        extract = getattr(getattr(importlib.import_module(module), cls), "extract")
        tree = ast.parse(textwrap.dedent(inspect.getsource(extract)))
        read = {n.slice.value for n in ast.walk(tree) if isinstance(n, ast.Subscript)
                and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)}
        assert not (claimed & read), (name, claimed & read)
        checked += 1
    assert checked
