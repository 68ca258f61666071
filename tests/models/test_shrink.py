"""Shrinking a Llama to a student shape: heads by rotary pairs, torch-pruning's coupled channels."""

import pytest
import torch

from harness.errors import HarnessError
from harness.models.build import build_model, param_count, student_config
from harness.models.shrink import head_rows, shrink_llama

VOCAB = 40


def llama(layers=2, hidden=32, ffn=32, heads=4, seed=0):
    return build_model(student_config("x", {"layers": layers, "hidden": hidden, "ffn": ffn, "heads": heads},
                                      VOCAB, 32), seed).eval()


def target(**shape):
    return student_config("t", shape, VOCAB, 32)


def ids(seed=0):
    return torch.randint(0, VOCAB, (2, 10), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("importance", ["magnitude", "taylor"])
def test_same_shape_is_the_identity(importance):
    model = llama()
    want = model(input_ids=ids()).logits
    out = shrink_llama(model, target(layers=2, hidden=32, ffn=32, heads=4), ids(1), importance=importance)
    assert torch.allclose(out(input_ids=ids()).logits, want, atol=1e-6)


def test_ffn_channels_that_do_nothing_are_the_ones_pruned():
    model = llama()
    dead = [3, 7, 8, 30]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate_proj.weight[dead] = 0.0
            layer.mlp.up_proj.weight[dead] = 0.0
            layer.mlp.down_proj.weight[:, dead] = 0.0
    want = model(input_ids=ids()).logits
    out = shrink_llama(model, target(layers=2, hidden=32, ffn=28, heads=4))
    assert torch.allclose(out(input_ids=ids()).logits, want, atol=1e-6)


def test_hidden_channel_that_is_zero_everywhere_is_pruned():
    model = llama()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2 and p.shape[1] == 32:
                p[:, 5] = 0.0
        for name, p in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")) or p.dim() == 1:
                p[5] = 0.0
    out = shrink_llama(model, target(layers=2, hidden=24, ffn=32, heads=4))
    kept = out.model.embed_tokens.weight
    emb = model.model.embed_tokens.weight
    # the zero channel is gone and each kept column is an original column
    assert not (kept == 0).all(0).any()
    assert all(any(torch.equal(kept[:, j], emb[:, i]) for i in range(32)) for j in range(24))


def test_fewer_heads_drop_the_weakest_head_and_keep_order():
    model = llama()
    attn = model.model.layers[0].self_attn
    with torch.no_grad():
        for m in (attn.q_proj, attn.k_proj, attn.v_proj):
            m.weight[8:16] *= 0.01  # head 1 of 4 (head_dim 8)
        attn.o_proj.weight[:, 8:16] *= 0.01
    assert head_rows(attn, 3, 8, "magnitude") == [*range(0, 8), *range(16, 24), *range(24, 32)]


def test_narrower_heads_keep_whole_rotary_pairs():
    model = llama()
    attn = model.model.layers[0].self_attn
    with torch.no_grad():  # pair 2 of every head (dims 2 and 6 of head_dim 8) is weak
        for h in range(4):
            for d in (h * 8 + 2, h * 8 + 6):
                for m in (attn.q_proj, attn.k_proj, attn.v_proj):
                    m.weight[d] *= 0.01
    rows = head_rows(attn, 4, 6, "magnitude")
    assert rows[:6] == [0, 1, 3, 4, 5, 7]  # head 0: pairs 0, 1, 3 -> first halves then second halves
    for h in range(4):
        new = rows[h * 6:(h + 1) * 6]
        assert [b - a for a, b in zip(new[:3], new[3:])] == [4, 4, 4]  # each kept pair stays a pair


def test_more_heads_split_each_source_head():
    model = llama()
    rows = head_rows(model.model.layers[0].self_attn, 8, 4, "magnitude")
    assert rows[:8] == [0, 1, 4, 5, 2, 3, 6, 7]  # head 0 -> two heads of pairs (0, 1) and (2, 3)
    assert sorted(rows) == list(range(32))
    with pytest.raises(HarnessError, match="cannot make 6 heads from 4"):
        head_rows(model.model.layers[0].self_attn, 6, 4, "magnitude")


def test_exact_shape_and_param_count_and_reload(tmp_path):
    from transformers import AutoModelForCausalLM

    shape = dict(layers=1, hidden=16, ffn=20, heads=2)
    out = shrink_llama(llama(layers=3, ffn=48), target(**shape), ids(2), importance="taylor")
    assert sum(p.numel() for p in out.parameters()) == param_count(target(**shape))
    out.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(back(input_ids=ids()).logits, out(input_ids=ids()).logits)


def test_growing_is_refused():
    with pytest.raises(HarnessError, match="cannot grow the layers: 2 -> 3"):
        shrink_llama(llama(), target(layers=3, hidden=32, ffn=32, heads=4))
    with pytest.raises(HarnessError, match="cannot grow the FFN width: 32 -> 64"):
        shrink_llama(llama(), target(layers=2, hidden=32, ffn=64, heads=4))


def test_a_padded_vocabulary_keeps_the_rows_of_the_students_tokens():
    """EEP's dense OLMoE has 50,304 embedding rows, the student 50,280: the first rows survive."""
    model = build_model(student_config("x", {"layers": 2, "hidden": 32, "ffn": 32, "heads": 4}, VOCAB + 9, 32), 0)
    embed, head = model.model.embed_tokens.weight[:VOCAB].clone(), model.lm_head.weight[:VOCAB].clone()
    out = shrink_llama(model, target(layers=2, hidden=32, ffn=32, heads=4), ids(1))
    assert torch.equal(out.model.embed_tokens.weight, embed) and torch.equal(out.lm_head.weight, head)
    with pytest.raises(HarnessError, match="vocabulary of 40 tokens, the student 41"):
        shrink_llama(llama(), student_config("t", {"layers": 2, "hidden": 32, "ffn": 32, "heads": 4}, VOCAB + 1, 32))
