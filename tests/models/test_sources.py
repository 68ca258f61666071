"""The source stage: tiny sources pre-trained here, or a pointer to an existing checkpoint."""

import json

import pytest
import torch

from harness.stages import build as stages
from harness.errors import HarnessError
from harness.models.sources import Source
from tests.conftest import killed_after_checkpoint
from tests.models.test_models import SOURCES

TRAINING = {"budget": 32 * 4 * 6, "seed": 0, "seq_len": 32, "batch_size": 4, "log_every": 2,
            "optim": {"lr": 1e-3}}


@pytest.mark.parametrize("name", list(SOURCES))
def test_source_is_pretrained_saved_and_reloaded_frozen(name, tmp_path, tokenizer_dir, tokens_file):
    out = tmp_path / name
    stages.source({"source": SOURCES[name], "seed": 0, "training": TRAINING}, name, tokenizer_dir, tokens_file, out)
    manifest = json.loads((out / "source.json").read_text())
    assert manifest["tokens"] == TRAINING["budget"] and manifest["arch"] == SOURCES[name]["arch"]
    assert (out / "train_log.jsonl").read_text().count("\n") == 3
    assert not (tmp_path / f"{name}.work").exists()
    model = Source.from_manifest(out).load()
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()


@pytest.mark.parametrize("name", ["olmo", "olmoe", "deepseek"])
def test_a_source_trained_twice_or_killed_and_resumed_has_identical_weights(name, tmp_path, tokenizer_dir,
                                                                             tokens_file, monkeypatch):
    """The numbers downstream of a source are reproducible only if the source is: two cold runs,
    and a run killed after its second checkpoint then resumed, save byte-identical weights."""
    cfg = {"source": SOURCES[name], "seed": 0, "training": {**TRAINING, "budget": 32 * 4 * 12, "checkpoint_every": 3}}
    for run in ("a", "b"):
        stages.source(cfg, name, tokenizer_dir, tokens_file, tmp_path / run)
    with killed_after_checkpoint(monkeypatch, 2):
        stages.source(cfg, name, tokenizer_dir, tokens_file, tmp_path / "resumed")
    stages.source(cfg, name, tokenizer_dir, tokens_file, tmp_path / "resumed")
    weights = [(tmp_path / run / "model" / "model.safetensors").read_bytes() for run in ("a", "b", "resumed")]
    assert weights[0] == weights[1] == weights[2]


def test_model_path_source_points_at_an_existing_checkpoint(tmp_path, tokenizer_dir, tokens_file):
    built = tmp_path / "built"
    stages.source({"source": SOURCES["olmo"], "seed": 0, "training": TRAINING}, "olmo", tokenizer_dir, tokens_file,
                  built)
    pointer = tmp_path / "pointer"
    spec = {"arch": "olmo", "model_path": str(built / "model")}
    stages.source({"source": spec, "seed": 0, "training": TRAINING}, "olmo", tokenizer_dir, tokens_file, pointer)
    a = Source.from_manifest(built).load()
    b = Source.from_manifest(pointer).load()
    x = torch.tensor([[5, 6, 7, 8]])
    torch.testing.assert_close(a(x).logits, b(x).logits)


def test_missing_checkpoint_is_one_line(tmp_path):
    (tmp_path / "source.json").write_text(json.dumps({"name": "olmo", "arch": "olmo",
                                                       "model_path": str(tmp_path / "gone")}))
    with pytest.raises(HarnessError, match="no checkpoint at"):
        Source.from_manifest(tmp_path).load()


REMOTE_CONFIG = '''
from transformers import LlamaConfig


class TinyRemoteConfig(LlamaConfig):
    model_type = "tiny_remote"
'''
REMOTE_MODEL = '''
from transformers import LlamaForCausalLM

from .configuration_tiny_remote import TinyRemoteConfig


class TinyRemoteForCausalLM(LlamaForCausalLM):
    config_class = TinyRemoteConfig
'''


def test_checkpoint_with_its_own_code_needs_the_opt_in(tmp_path, tokenizer_dir, tokens_file):
    """A hub-style checkpoint whose model class lives in its own files, of a type no adapter
    converts: refused in one line without `trust_remote_code`, loaded with it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    ckpt = tmp_path / "remote"
    LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config.update(model_type="tiny_remote", architectures=["TinyRemoteForCausalLM"],
                  auto_map={"AutoConfig": "configuration_tiny_remote.TinyRemoteConfig",
                            "AutoModelForCausalLM": "modeling_tiny_remote.TinyRemoteForCausalLM"})
    (ckpt / "config.json").write_text(json.dumps(config))
    (ckpt / "configuration_tiny_remote.py").write_text(REMOTE_CONFIG)
    (ckpt / "modeling_tiny_remote.py").write_text(REMOTE_MODEL)
    for trust in (False, True):
        spec = {"arch": "deepseek", "model_path": str(ckpt), "trust_remote_code": trust}
        stages.source({"source": spec, "seed": 0, "training": TRAINING}, "deepseek", tokenizer_dir, tokens_file,
                      tmp_path / f"pointer{trust}")
    with pytest.raises(HarnessError, match="ships its own model code; to run it, set `trust_remote_code: true` "
                                           "under sources.deepseek"):
        Source.from_manifest(tmp_path / "pointerFalse").load()
    model = Source.from_manifest(tmp_path / "pointerTrue").load()
    assert type(model).__name__ == "TinyRemoteForCausalLM" and not any(p.requires_grad for p in model.parameters())
