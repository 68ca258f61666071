"""One contract, every registered method: the student it builds loads with
AutoModelForCausalLM, has the requested shape, and is identical on a rerun with the same seed."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from harness.stages import build as stages
from harness.io import RUN_RECORD
from harness.api.method import HOOKS, Adapts, Extracts, InitsStudent, ShapesPretrainLoss, ShapesSFTLoss, hook
from harness.models.build import param_count, student_config
from harness.api.plugin_source import init_options
from harness.api.registry import artifact_method, family, load_method, method_names, method_options, method_spec
from tests.models.test_models import SOURCES
from tests.models.test_sources import TRAINING

SHAPE = {"layers": 2, "hidden": 32, "ffn": 48, "heads": 2}
# small settings per method family; a method not listed runs on its defaults
OPTIONS = {"masa": {"align_tokens": 32 * 4 * 3, "align_batch": 4},
           "pruning-eep": {"experts_kept": 3, "population": 2, "prune_archive": 3, "merge_archive": 4,
                           "fitness_examples": 2, "dev_examples": 2, "dev_top": 2, "calibration_sequences": 2}}
# EEP prunes a standard MoE; the controls copy a twin of the student's shape; every other method gets the dense source
SOURCE = {"pruning-eep": "olmoe", "prune-distill": "olmoe", "oracle": "twin"}
SPECS = {**SOURCES, "twin": {"arch": "llama", **SHAPE}}


@pytest.fixture(scope="module")
def source_dirs(tmp_path_factory, tokenizer_dir, tokens_file):
    dirs = {}

    def get(name):
        if name not in dirs:
            dirs[name] = tmp_path_factory.mktemp("sources") / name
            stages.source({"source": SPECS[name], "seed": 0, "training": TRAINING}, name, tokenizer_dir,
                          tokens_file, dirs[name])
        return dirs[name]
    return get


def _domains(world_dir, tmp_path):
    """The world's corpus domains, and RedPajama-1T's subsets (the paper profile's domains) as
    copies of one of them, so every registered domain variant finds its text."""
    import shutil

    from methods.registry import REDPAJAMA_SUBSETS

    out = tmp_path / "domains"
    if not out.exists():
        shutil.copytree(world_dir / "domains", out)
        for subset in REDPAJAMA_SUBSETS:
            shutil.copy(world_dir / "domains" / "encyclopedia.txt", out / f"{subset}.txt")
    return out


def _init(method, tmp_path, tokenizer_dir, source_dir, seed, tag, tokens_file, world_dir):
    artifact = tmp_path / f"artifact-{tag}"
    options = method_options(OPTIONS, method)
    stages.extract({"method": method, "seed": 0, "seq_len": 32, "method_options": options},
                   source_dir, artifact, tokens_file, [world_dir / "tasks" / "boolq"], _domains(world_dir, tmp_path))
    out = tmp_path / f"init-{tag}"
    stages.init({"method": method, "shape_name": "t", "shape": SHAPE, "seq_len": 64, "method_options": options},
                tokenizer_dir, seed, out, source_dir, artifact)
    return out


@pytest.mark.parametrize("method", method_names())
def test_method_builds_a_loadable_reproducible_student(method, tmp_path, tokenizer_dir, source_dirs, tokens_file,
                                                       world_dir):
    source_dir = source_dirs(SOURCE.get(family(method), "olmo"))
    a = _init(method, tmp_path, tokenizer_dir, source_dir, 3, "a", tokens_file, world_dir)
    b = _init(method, tmp_path, tokenizer_dir, source_dir, 3, "b", tokens_file, world_dir)
    model = AutoModelForCausalLM.from_pretrained(a)
    assert type(model).__name__ == "LlamaForCausalLM"
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size) == (2, 32, 48)
    assert sum(p.numel() for p in model.parameters()) == param_count(
        student_config("t", SHAPE, cfg.vocab_size, 64))
    again = AutoModelForCausalLM.from_pretrained(b)
    for (name, x), y in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(x, y), name


SHARED_ARTIFACT = [m for m in method_names() if artifact_method(m, OPTIONS) != m]


@pytest.mark.parametrize("method", SHARED_ARTIFACT)
def test_a_composition_sharing_its_parts_artifact_would_extract_the_same_files(method, tmp_path, source_dirs,
                                                                                tokens_file, world_dir):
    """The workflow builds prune-then-distill's students from Pruning-EEP's artifact (one search
    where there were two), and masa-no-scaling's from masa's: that is sound only if the method's own
    extraction is the same."""
    owner = artifact_method(method, OPTIONS)
    source_dir = source_dirs(SOURCE.get(family(method), "olmo"))
    dirs = {}
    for name in (method, owner):
        dirs[name] = tmp_path / name
        stages.extract({"method": name, "seed": 0, "seq_len": 32, "method_options": method_options(OPTIONS, name)},
                       source_dir, dirs[name], tokens_file, [world_dir / "tasks" / "boolq"], _domains(world_dir, tmp_path))
    # TensorBoard's files are named by wall-clock time and pid: a view of the alignment log, compared below
    files = {name: sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file() and "tensorboard" not in p.parts)
             for name, d in dirs.items()}
    assert files[method] == files[owner]
    for rel in files[owner]:
        if rel.name == RUN_RECORD:  # it records the method that ran, the time and the code version
            continue
        mine, theirs = ((dirs[name] / rel).read_bytes() for name in (method, owner))
        if rel.suffix in (".json", ".jsonl"):  # the same but for how long it took and who ran it
            lines = (lambda text: [text]) if rel.suffix == ".json" else bytes.splitlines
            mine, theirs = ([_untimed(json.loads(line)) for line in lines(text)] for text in (mine, theirs))
            if rel.name == "manifest.json":
                mine[0]["method"] = owner
                # the options init_student alone reads are the variant's own (what it shares is the rest)
                for manifest in (mine[0], theirs[0]):
                    for key in init_options(method_spec(method).target):
                        manifest.get("options", {}).pop(key, None)
        assert mine == theirs, rel


def _untimed(record):
    if isinstance(record, dict):
        return {k: _untimed(v) for k, v in record.items() if not k.endswith("seconds")}
    return [_untimed(v) for v in record] if isinstance(record, list) else record


def test_prune_then_distill_shares_eeps_artifact_unless_its_options_differ():
    assert artifact_method("prune-distill", OPTIONS) == "pruning-eep"
    assert artifact_method("prune-distill", {**OPTIONS, "prune-distill": {"distill": {"alpha": 1.0}}}) == "pruning-eep"
    assert artifact_method("prune-distill", {**OPTIONS, "prune-distill": {"pruning-eep": {"population": 3}}}) == \
        "prune-distill"
    assert artifact_method("masa", OPTIONS) == "masa" and artifact_method("distill", OPTIONS) == "distill"


@pytest.mark.parametrize("method", method_names())
def test_method_hooks_match_their_protocols(method):
    m = load_method(method)
    protocols = {"extract": Extracts, "init_student": InitsStudent, "pretrain_loss": ShapesPretrainLoss,
                 "adapt": Adapts, "sft_loss": ShapesSFTLoss}
    for name in HOOKS:
        assert (hook(m, name) is not None) == isinstance(m, protocols[name])
    assert isinstance(getattr(m, "label", None), str)


@pytest.mark.parametrize("method", method_names())
def test_hooks_and_options_read_from_source_are_the_imported_classes(method):
    """The workflow plans from each method's source file (harness/api/plugin_source.py, no torch);
    what it reads must be what the imported class has."""
    import sys

    from harness.api.registry import _method_class, method_hooks, method_spec, option_names

    cls = _method_class(method)
    assert method_hooks(method) == {h for h in HOOKS if callable(getattr(cls, h, None))}
    spec = method_spec(method)
    if not spec.parts:
        defaults = getattr(cls, "DEFAULTS", None) or getattr(sys.modules[cls.__module__], "DEFAULTS", {})
        assert option_names(method) == set(defaults)
        assert set(spec.options) <= option_names(method)  # a variant fixes options its class has
