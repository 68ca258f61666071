"""Compositions: each hook is its owner's, run with its owner's options, and two owners of one
hook are refused when the config is validated."""

import pytest
import torch

from harness.api import registry
from harness.workflow.config import load_profile, resolve
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.api.method import Context
from harness.models.build import build_model, source_config, student_config
from harness.api.registry import MethodSpec, implements, load_method, method_options, shares_pretraining
from harness.models.sources import Source

VOCAB = 53
STUDENT = {"layers": 2, "hidden": 16, "ffn": 24, "heads": 2}


@pytest.fixture
def with_entries(monkeypatch):
    """Register extra compositions for one test."""
    def add(**entries):
        table = {**registry.registry_table(), **{n: MethodSpec(n, "harness.api.compose:Composite", parts=tuple(p))
                                                  for n, p in entries.items()}}
        monkeypatch.setattr(registry.METHODS, "_table", table)
    return add


@pytest.fixture(scope="module")
def olmo(tmp_path_factory):
    out = tmp_path_factory.mktemp("olmo")
    spec = {"arch": "olmo", "layers": 3, "hidden": 32, "ffn": 40, "heads": 2}
    build_model(source_config("olmo", spec, VOCAB, 32), 5).save_pretrained(out / "model")
    atomic_write_json(out / "source.json", {"name": "olmo", "arch": "olmo", "model_path": "model"})
    return Source.from_manifest(out)


def test_prune_then_distill_takes_eeps_search_and_init_and_distills_loss():
    assert load_method("prune-distill").owners == {"extract": "pruning-eep", "init_student": "pruning-eep",
                                                   "pretrain_loss": "distill"}
    assert implements("prune-distill", "extract") and not implements("prune-distill", "adapt")
    assert not shares_pretraining("prune-distill")


def test_the_composition_equals_its_hooks_run_by_hand(with_entries, olmo):
    with_entries(**{"ws-distill": ["weight-selection", "distill"]})
    options = method_options({"distill": {"alpha": 0.25}, "ws-distill": {"weight-selection": {"head": "skip"}}},
                             "ws-distill")
    assert options == {"weight-selection": {"head": "skip"}, "distill": {"alpha": 0.25}}

    def ctx(opts):
        return Context(options=opts, seed=2, device=torch.device("cpu"), source=olmo)

    config = student_config("s", STUDENT, VOCAB, 32)
    torch.manual_seed(2)
    composed = load_method("ws-distill")
    student = composed.init_student(config, None, ctx(options))
    torch.manual_seed(2)
    by_hand = load_method("weight-selection").init_student(config, None, ctx({"head": "skip"}))
    for (name, a), b in zip(student.state_dict().items(), by_hand.state_dict().values()):
        assert torch.equal(a, b), name

    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "labels": ids}
    loss = composed.pretrain_loss(batch, student, ctx(options))
    want = load_method("distill").pretrain_loss(batch, by_hand, ctx({"alpha": 0.25}))
    assert torch.equal(loss, want)
    assert not torch.equal(want, load_method("distill").pretrain_loss(batch, by_hand, ctx({})))  # alpha mattered


def test_two_owners_of_one_hook_are_refused_at_validation(with_entries):
    with_entries(**{"masa-ws": ["masa", "weight-selection"]})
    cfg = load_profile("micro")
    cfg["methods"] = [*cfg["methods"], {"name": "masa-ws", "source": "olmo", "label": "both"}]
    with pytest.raises(HarnessError, match="config error: method 'masa-ws': 'masa' and 'weight-selection' both "
                                           "implement `init_student`") as e:
        resolve(cfg)
    assert "\n" not in str(e.value)


def test_a_compositions_options_must_name_its_parts():
    cfg = load_profile("micro")
    cfg["method_options"]["prune-distill"] = {"alpha": 1.0}
    with pytest.raises(HarnessError, match="'alpha' is not one of its parts \\(pruning-eep, distill\\)"):
        resolve(cfg)
    cfg["method_options"]["prune-distill"] = {"distill": {"alpha": 1.0}}
    resolve(cfg)
