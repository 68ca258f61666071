"""The source stage: tiny sources pre-trained here, or a pointer to an existing checkpoint."""

import json

import pytest
import torch

from harness import stages
from harness.errors import HarnessError
from harness.sources import Source
from tests.test_models import SOURCES

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
