"""Weight Selection: the evenly spaced indices against exact arithmetic, the selection against
fancy indexing, and whole students selected from every source architecture."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.models.archs import ffn_views
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.api.method import Context
from harness.models.build import build_model, source_config, student_config
from harness.api.registry import load_method
from harness.models.sources import Source
from baselines.weight_selection import select, selected_indices

VOCAB = 97
STUDENT = {"layers": 3, "hidden": 20, "ffn": 30, "heads": 2}
SOURCE = {"layers": 5, "hidden": 36, "ffn": 44, "heads": 4, "experts": 3, "top_k": 2, "shared_experts": 2}


def reference_spread(n, k):
    """round(i (n-1) / (k-1)), half up, in exact rationals."""
    if k == 1:
        return [0]
    return [int(Fraction(i * (n - 1), k - 1) + Fraction(1, 2)) for i in range(k)]


@pytest.mark.parametrize("n,k", [(7, 3), (8, 3), (512, 192), (44, 30), (5, 5), (9, 1), (1, 1), (101, 100), (6, 4)])
def test_spread_indices_are_exact_evenly_spaced_and_keep_both_ends(n, k):
    idx = selected_indices(n, k)
    assert idx == reference_spread(n, k)
    assert len(set(idx)) == k and idx == sorted(idx) and idx[0] == 0 and (k == 1 or idx[-1] == n - 1)


@pytest.mark.parametrize("n,k", [(512, 256), (12, 4), (7, 3), (44, 30)])
def test_stride_indices_are_the_references_divisible_branch(n, k):
    idx = selected_indices(n, k, "stride")
    if n % k == 0:
        assert idx == list(range(0, n, n // k))
    assert len(set(idx)) == k and max(idx) < n


def test_a_larger_student_is_refused():
    with pytest.raises(HarnessError, match="cannot select 5 of 4"):
        selected_indices(4, 5)


def test_select_equals_indexing_every_dimension_at_once():
    w = torch.randn(13, 8, 9)
    want = w.numpy()[np.ix_(reference_spread(13, 5), reference_spread(8, 8), reference_spread(9, 2))]
    assert np.array_equal(select(w, (5, 8, 2)).numpy(), want)


def _source(tmp_path: Path, arch: str, spec: dict) -> Source:
    config = (student_config if arch == "llama" else source_config)(arch, {**spec, "arch": arch}, VOCAB, 32)
    model = build_model(config, 11)
    with torch.no_grad():  # unlike any seed's init, so a copied tensor is recognisable
        for p in model.parameters():
            p.add_(1.0)
    model.save_pretrained(tmp_path / arch / "model")
    atomic_write_json(tmp_path / arch / "source.json", {"name": arch, "arch": arch, "model_path": "model"})
    return Source.from_manifest(tmp_path / arch)


def _select(source: Source, shape=STUDENT, **options):
    method = load_method("weight-selection")
    ctx = Context(options=options, seed=3, device=torch.device("cpu"), source=source)
    return method.init_student(student_config("s", shape, VOCAB, 32), None, ctx)


def test_a_same_shape_llama_is_copied_exactly(tmp_path):
    source = _source(tmp_path, "llama", STUDENT)
    student, twin = _select(source), source.load()
    for name, w in twin.state_dict().items():
        assert torch.equal(student.state_dict()[name], w), name


@pytest.mark.parametrize("arch,selected", [("olmo", 2 + 7 * 3), ("olmoe", 3 + 9 * 3), ("deepseek", 3 + 9 * 3)])
def test_every_architecture_gives_its_counterparts(arch, selected, tmp_path, capsys):
    source = _source(tmp_path, arch, SOURCE)
    student = _select(source)
    scratch = build_model(student_config("s", STUDENT, VOCAB, 32), 3)
    src = source.load()
    changed = [n for n, p in student.named_parameters() if not torch.equal(p, scratch.state_dict()[n])]
    assert len(changed) == selected, changed
    assert f"{selected} of 30 student tensors selected" in capsys.readouterr().out
    # the uniform layer map takes source layers 0, 2, 4; the last student layer's FFN is the
    # source's last, selected from its dense view (every expert side by side for an MoE)
    pool = ffn_views(src)[4].pool()
    for kind in ("gate", "up", "down"):
        got = student.model.layers[2].mlp.get_submodule(f"{kind}_proj").weight
        assert torch.equal(got, select(pool[kind], tuple(got.shape)))
    assert torch.equal(student.lm_head.weight, select(src.lm_head.weight, (VOCAB, 20)))


def test_moe_ffn_whole_takes_deepseeks_shared_experts_and_refuses_olmoe(tmp_path):
    src = _source(tmp_path, "deepseek", SOURCE)
    student = _select(src, moe_ffn="whole")
    shared = ffn_views(src.load())[0].shared
    assert torch.equal(student.model.layers[0].mlp.up_proj.weight, select(shared.up, (30, 20)))
    with pytest.raises(HarnessError, match="no shared experts for `moe_ffn: whole`"):
        _select(_source(tmp_path, "olmoe", SOURCE), moe_ffn="whole")


def test_head_skip_leaves_the_head_at_random_init(tmp_path):
    student = _select(_source(tmp_path, "olmo", SOURCE), head="skip")
    assert torch.equal(student.lm_head.weight, build_model(student_config("s", STUDENT, VOCAB, 32), 3).lm_head.weight)


def test_another_vocabulary_and_unknown_options_are_refused(tmp_path):
    source = _source(tmp_path, "olmo", SOURCE)
    method = load_method("weight-selection")
    with pytest.raises(HarnessError, match="vocabulary of 97 tokens, the student 98"):
        method.init_student(student_config("s", STUDENT, VOCAB + 1, 32), None,
                            Context(options={}, seed=0, device=torch.device("cpu"), source=source))
    # a padded source vocabulary (OLMo's 50,304 rows for 50,280 tokens) gives its first rows
    small = method.init_student(student_config("s", STUDENT, VOCAB - 7, 32), None,
                                Context(options={}, seed=0, device=torch.device("cpu"), source=source))
    assert torch.equal(small.model.embed_tokens.weight,
                       select(source.load().model.embed_tokens.weight[:VOCAB - 7], (VOCAB - 7, 20)))
    with pytest.raises(HarnessError, match="unknown indices 'even'"):
        _select(source, indices="even")
