"""The positive and null controls (docs/signal.md): the twin copied whole, all but its FFNs, its
FFNs only, and Scratch with another init stream, checked weight by weight."""

import pytest
import torch

from harness.errors import HarnessError
from harness.api.method import Context
from harness.models.build import build_model, student_config
from harness.api.registry import load_method
from harness.models.sources import Source

SHAPE = {"layers": 2, "hidden": 32, "ffn": 48, "heads": 2}
VOCAB = 97  # odd sizes catch a transposed copy


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory):
    """A twin of SHAPE with weights unlike any seed's init (a trained twin, as far as copying goes)."""
    out = tmp_path_factory.mktemp("twin")
    model = build_model(student_config("twin", SHAPE, VOCAB, 64), seed=123)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.save_pretrained(out / "model")
    (out / "source.json").write_text('{"name": "twin", "arch": "llama", "model_path": "model"}')
    return out


def _student(method: str, source_dir, seed: int = 4, shape=SHAPE):
    m = load_method(method)
    ctx = Context(options=m.variant_options, seed=seed, device=torch.device("cpu"),
                  source=Source.from_manifest(source_dir) if source_dir else None)
    torch.manual_seed(seed)
    return m.init_student(student_config("s", shape, VOCAB, 64), None, ctx)


@pytest.mark.parametrize("method,copied", [("oracle", "all"), ("oracle-ffn", "ffn"), ("oracle-no-ffn", "rest")])
def test_oracle_copies_exactly_its_part_of_the_twin_and_scratch_init_elsewhere(twin_dir, method, copied):
    student = _student(method, twin_dir).state_dict()
    twin = Source.from_manifest(twin_dir).load().state_dict()
    scratch = build_model(student_config("s", SHAPE, VOCAB, 64), seed=4).state_dict()
    assert student.keys() == twin.keys()
    for name, w in student.items():
        from_twin = copied == "all" or (copied == "ffn") == (".mlp." in name)
        assert torch.equal(w, (twin if from_twin else scratch)[name]), name
    n_ffn = sum(".mlp." in n for n in student)
    assert n_ffn == 3 * SHAPE["layers"]


# the knowledge map's parts, written out by hand from a Llama's parameter names
MAP_PARTS = {
    "oracle-embed": {"model.embed_tokens.weight", "lm_head.weight"},
    "oracle-attention": {f"model.layers.{i}.self_attn.{p}_proj.weight" for i in range(2) for p in "qkvo"},
    "oracle-norms": {"model.norm.weight", *(f"model.layers.{i}.{n}.weight" for i in range(2)
                                            for n in ("input_layernorm", "post_attention_layernorm"))},
    "oracle-ffn-embed": {"model.embed_tokens.weight", "lm_head.weight",
                         *(f"model.layers.{i}.mlp.{p}_proj.weight" for i in range(2) for p in ("gate", "up", "down"))},
}


@pytest.mark.parametrize("method", sorted(MAP_PARTS))
def test_each_knowledge_map_control_copies_exactly_its_part(twin_dir, method):
    student = _student(method, twin_dir).state_dict()
    twin = Source.from_manifest(twin_dir).load().state_dict()
    scratch = build_model(student_config("s", SHAPE, VOCAB, 64), seed=4).state_dict()
    for name, w in student.items():
        assert torch.equal(w, (twin if name in MAP_PARTS[method] else scratch)[name]), name


def test_the_spectrum_control_keeps_the_twins_singular_values_and_nothing_else(twin_dir):
    student = _student("oracle-ffn-spectrum", twin_dir).state_dict()
    twin = Source.from_manifest(twin_dir).load().state_dict()
    scratch = build_model(student_config("s", SHAPE, VOCAB, 64), seed=4).state_dict()
    ffn = [n for n in student if ".mlp." in n]
    assert len(ffn) == 6
    for name, w in student.items():
        if name not in ffn:
            assert torch.equal(w, scratch[name]), name
            continue
        assert w.shape == twin[name].shape  # (48, 32) and (32, 48): both orientations
        s_twin = torch.linalg.svdvals(twin[name].double())
        assert torch.allclose(torch.linalg.svdvals(w.double()), s_twin, rtol=1e-5, atol=1e-5), name
        # random singular vectors: the matrix is not the twin's (nor is its top direction)
        u_twin = torch.linalg.svd(twin[name].double())[0][:, 0]
        u = torch.linalg.svd(w.double())[0][:, 0]
        assert abs(float(u @ u_twin)) < 0.9, name
        assert not torch.allclose(w, twin[name], atol=1e-3)
    again = _student("oracle-ffn-spectrum", twin_dir).state_dict()
    assert all(torch.equal(student[n], again[n]) for n in ffn)  # drawn from the seed
    other = _student("oracle-ffn-spectrum", twin_dir, seed=5).state_dict()
    assert not torch.equal(student[ffn[0]], other[ffn[0]])


def test_oracle_refuses_a_twin_of_another_shape(twin_dir):
    with pytest.raises(HarnessError, match="intermediate_size 48, the student 64: the twin must have"):
        _student("oracle", twin_dir, shape={**SHAPE, "ffn": 64})
    with pytest.raises(HarnessError, match="needs a source"):
        _student("oracle-ffn", None)


def test_aa_scratch_is_another_init_of_the_same_shape_and_reproducible():
    aa, again = _student("scratch-aa", None), _student("scratch-aa", None)
    scratch = build_model(student_config("s", SHAPE, VOCAB, 64), seed=4).state_dict()
    for name, w in aa.state_dict().items():
        assert torch.equal(w, again.state_dict()[name])
        if w.dim() == 2:  # matrices are drawn; norms start at one in both
            assert not torch.equal(w, scratch[name]), name
