"""SemAlign's math against independent references (numpy's pinv, feature-space CKA, autograd
with gradients switched on), the text's pairing rule by hand, and the method end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.semalign import (capture, centred_gram_loss, cosine_layer_loss,
                                interpolation, layer_attribution, onehot_output_loss, projection,
                                semantic_bases, student_layer, teacher_layer)
from harness.data.batches import IGNORE
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.api.method import Context
from harness.models.build import build_model, student_config
from harness.api.registry import load_method
from harness.models.sources import Source
from harness.data.tasks import Task
from harness.data.tokenizer import load_tokenizer, special_ids


# ---------------------------------------------------------------- bases and P

@pytest.mark.parametrize("V,d", [(97, 16), (50, 7), (300, 33)])
def test_bases_are_numpys_pinv_with_unit_columns(V, d):
    W = torch.randn(V, d, generator=torch.Generator().manual_seed(V))
    ref = np.linalg.pinv(W.double().numpy())
    ref /= np.linalg.norm(ref, axis=0, keepdims=True)
    np.testing.assert_allclose(semantic_bases(W).numpy(), ref, atol=1e-10)


def test_p_is_the_student_bases_times_the_teachers():
    g = torch.Generator().manual_seed(1)
    ws, wt = torch.randn(61, 12, generator=g), torch.randn(61, 20, generator=g)
    S_s, S_t = (np.linalg.pinv(w.double().numpy()) for w in (ws, wt))
    S_s, S_t = S_s / np.linalg.norm(S_s, axis=0), S_t / np.linalg.norm(S_t, axis=0)
    P = projection(ws, wt)
    assert P.shape == (12, 20)
    np.testing.assert_allclose(P.double().numpy(), S_s @ S_t.T, rtol=1e-5, atol=1e-6)
    with pytest.raises(HarnessError, match="teacher's vocabulary has 60 tokens, the student's 61"):
        projection(ws, wt[:60])


def test_bases_recompose_a_hidden_state():
    """Exactly (cos 1) for a head with an isotropic Gram and equal row norms; at cos > 0.98 for a
    random head with many more tokens than dimensions (the real heads' regime)."""
    d, k = 16, 6
    Q = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0)))[0]
    W = torch.cat([Q] * k) / k ** 0.5  # W^T W = I, every row of norm 1/sqrt(k)
    S = semantic_bases(W)
    h = torch.randn(9, d, dtype=torch.float64)
    torch.testing.assert_close(F.cosine_similarity(h, h @ S @ S.T, dim=-1), torch.ones(9, dtype=torch.float64))
    S = semantic_bases(torch.randn(4096, 64, generator=torch.Generator().manual_seed(0)))
    h = torch.randn(9, 64, dtype=torch.float64)
    assert F.cosine_similarity(h, h @ S @ S.T, dim=-1).min() > 0.98


# ---------------------------------------------------------------- pairing, by hand from the text

def test_pairing_40_to_32():
    assert [teacher_layer(k, 40, 32) for k in (1, 2, 3, 4, 5, 31, 32)] == [1, 2, 3, 5, 6, 38, 40]
    assert [student_layer(l, 40, 32) for l in (1, 4, 5, 39, 40)] == [1, 4, 4, 32, 32]
    assert interpolation(3, 40, 32) == (3, 4, 0.75)
    assert interpolation(4, 40, 32) == (5, 6, 0.0)
    assert interpolation(32, 40, 32) == (39, 40, 1.0)


def test_pairing_4_to_3():
    assert [teacher_layer(k, 4, 3) for k in (1, 2, 3)] == [1, 2, 4]
    assert [student_layer(l, 4, 3) for l in (1, 2, 3, 4)] == [1, 2, 3, 3]
    a, b, lam = interpolation(2, 4, 3)
    assert (a, b) == (2, 3) and lam == pytest.approx(2 / 3)


def test_pairing_3_to_4_a_deeper_student():
    assert [teacher_layer(k, 3, 4) for k in (1, 2, 3, 4)] == [1, 1, 2, 3]
    assert [student_layer(l, 3, 4) for l in (1, 2, 3)] == [1, 3, 4]
    assert interpolation(1, 3, 4) == (1, 2, 0.0)  # u = 0.75 < a = 1: the first layer itself
    assert interpolation(4, 3, 4) == (2, 3, 1.0)


# ---------------------------------------------------------------- losses

def test_cosine_losses_against_loops():
    g = torch.Generator().manual_seed(2)
    h, t = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    cos = [float(h[b, i] @ t[b, i] / (h[b, i].norm() * t[b, i].norm())) for b in range(2) for i in range(5) if mask[b, i]]
    assert float(cosine_layer_loss(h, t, mask)) == pytest.approx(1 - np.mean(cos), abs=1e-6)

    logits = torch.randn(2, 4, 11, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 5], [IGNORE, 7, 2, IGNORE]])
    want = [float(logits[b, i - 1, labels[b, i]] / logits[b, i - 1].norm()) for b in range(2) for i in range(1, 4)
            if labels[b, i] != IGNORE]
    assert float(onehot_output_loss(logits, labels)) == pytest.approx(1 - np.mean(want), abs=1e-6)


def reference_cka(X, Y):
    """Linear CKA in feature space (Kornblith et al. 2019): ||Yc^T Xc||^2 / (||Xc^T Xc|| ||Yc^T Yc||)."""
    X, Y = X - X.mean(0), Y - Y.mean(0)
    return np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y))


def test_centred_gram_loss_is_one_minus_linear_cka_per_sequence():
    g = torch.Generator().manual_seed(3)
    ds, dt = torch.randn(2, 6, 5, generator=g), torch.randn(2, 6, 9, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    want = np.mean([1 - reference_cka(ds[b][mask[b].bool()].double().numpy(), dt[b][mask[b].bool()].double().numpy())
                    for b in range(2)])
    assert float(centred_gram_loss(ds, dt, mask)) == pytest.approx(want, abs=1e-5)
    Q = torch.linalg.qr(torch.randn(5, 5, generator=g))[0]  # CKA ignores rotations and scale
    assert float(centred_gram_loss(ds, 3 * ds @ Q, torch.ones(2, 6))) == pytest.approx(0.0, abs=1e-5)


# ---------------------------------------------------------------- with models

SHAPE = {"layers": 3, "hidden": 32, "ffn": 48, "heads": 2}


@pytest.fixture(scope="module")
def setup(tokenizer_dir, world_dir, tmp_path_factory):
    """A trained-looking teacher of another width (4 layers) sharing the student's tokenizer."""
    tok = load_tokenizer(tokenizer_dir)
    out = tmp_path_factory.mktemp("teacher")
    teacher = build_model(student_config("t", {"layers": 4, "hidden": 48, "ffn": 64, "heads": 2}, len(tok), 64,
                                         special_ids(tok)), 9)
    teacher.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    atomic_write_json(out / "source.json", {"name": "teacher", "arch": "llama", "model_path": "model"})
    task = Task("boolq", world_dir / "tasks" / "boolq")
    return tok, Source.from_manifest(out), task


def _student(tok, seed=1):
    return build_model(student_config("s", SHAPE, len(tok), 64, special_ids(tok)), seed)


def _ctx(tok, source, **options):
    return Context(options={"align_examples": 8, "max_len": 64, **options}, seed=0, device=torch.device("cpu"),
                   source=source, tokenizer=tok)


def test_attribution_equals_autograd_with_the_teachers_gradients_on(setup):
    tok, source, task = setup
    teacher = source.load()
    ids = torch.randint(0, len(tok), (2, 10), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    got = layer_attribution(teacher, [batch], "mlp", "signed")
    teacher.requires_grad_(True)
    outs = []
    hooks = [layer.mlp.register_forward_hook(lambda m, a, o: (o.retain_grad(), outs.append(o))[1])
             for layer in teacher.model.layers]
    teacher(**batch).loss.backward()
    for h in hooks:
        h.remove()
    want = torch.tensor([float((o.detach() * o.grad).sum()) for o in outs], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


def test_with_teacher_equal_to_student_the_layer_loss_is_one_minus_cos_h_ph(setup, tmp_path):
    tok, _, task = setup
    student = _student(tok)
    student.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    atomic_write_json(tmp_path / "source.json", {"name": "self", "arch": "llama", "model_path": "model"})
    method = load_method("semalign")
    method.adapt(_student(tok), task, _ctx(tok, Source.from_manifest(tmp_path)))
    (k, (a, b, lam)), = method._plan.pairs.items()
    assert a == k and lam == 0.0  # same depth: the paired teacher layer is the layer itself
    ids = torch.randint(0, len(tok), (2, 9), generator=torch.Generator().manual_seed(4))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    with torch.no_grad(), capture(student, [k], "mlp") as acts:
        logits = student(**batch).logits
    P = method._plan.P
    want = 1 - F.cosine_similarity(acts[k], acts[k] @ P.T, dim=-1).mean()
    with torch.no_grad():
        _, align = method.alignment_loss(batch, student)
    torch.testing.assert_close(align, want + onehot_output_loss(logits, ids), rtol=1e-5, atol=1e-6)
    assert 0 <= float(want) < 0.1 and not torch.allclose(P, torch.eye(P.shape[0]), atol=0.05)


def test_joint_schedule_adds_the_alignment_loss_to_the_task_loss(setup):
    tok, source, task = setup
    method = load_method("semalign")
    ctx = _ctx(tok, source)
    model = method.adapt(_student(tok), task, ctx)
    assert hasattr(model, "merge_and_unload")  # LoRA on up/down/v/o, as the protocol
    ids = torch.randint(0, len(tok), (2, 9), generator=torch.Generator().manual_seed(5))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    task_loss, align = method.alignment_loss(batch, model)
    torch.testing.assert_close(method.sft_loss(batch, model, ctx), task_loss + align)
    loss = method.sft_loss(batch, model, ctx)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora" in n)


@pytest.mark.parametrize("name,changed", [("semalign", "paired"), ("semalign-v2", "all")])
def test_before_schedule_trains_only_the_paired_layers(setup, name, changed):
    tok, source, task = setup
    student, before = _student(tok), _student(tok)
    method = load_method(name)
    ctx = _ctx(tok, source, **{"schedule": "before", "align_lr": 1e-2, **method.variant_options})
    model = method.adapt(student, task, ctx)
    base = model.get_base_model()
    moved = {int(n.split(".")[2]) for n, p in base.named_parameters()
             if "lora" not in n and not torch.equal(p, before.state_dict()[n.replace("base_layer.", "")])}
    assert moved == (set(method._plan.pairs) if changed == "paired" else {0, 1, 2})
    if changed == "paired":
        assert len(method._plan.pairs) == 1
    torch.testing.assert_close(method.sft_loss(*_plain_batch(tok), model, ctx),
                               model(**_plain_batch(tok)[0]).loss)


def _plain_batch(tok):
    ids = torch.randint(0, len(tok), (2, 9), generator=torch.Generator().manual_seed(6))
    return ({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids},)


def test_bad_options_and_another_tokenizer_are_one_line_errors(setup, tmp_path):
    tok, source, task = setup
    with pytest.raises(HarnessError, match="unknown site 'ffn'; use mlp or attn"):
        load_method("semalign").adapt(_student(tok), task, _ctx(tok, source, site="ffn"))
    other = build_model(student_config("o", SHAPE, len(tok), 64), 0)
    other.save_pretrained(tmp_path / "model")
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers
    raw = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]").save_pretrained(tmp_path / "model")
    atomic_write_json(tmp_path / "source.json", {"name": "other", "arch": "llama", "model_path": "model"})
    with pytest.raises(HarnessError, match="tokenises differently from the student"):
        load_method("semalign").adapt(_student(tok), task, _ctx(tok, Source.from_manifest(tmp_path)))


def test_a_padded_teacher_vocabulary_gives_the_bases_of_the_students_tokens(setup, tmp_path):
    tok, _, task = setup
    teacher = build_model(student_config("t", SHAPE, len(tok) + 9, 64, special_ids(tok)), 2)
    teacher.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    atomic_write_json(tmp_path / "source.json", {"name": "padded", "arch": "llama", "model_path": "model"})
    student = _student(tok)
    method = load_method("semalign")
    method.adapt(student, task, _ctx(tok, Source.from_manifest(tmp_path)))
    want = projection(student.get_output_embeddings().weight, teacher.lm_head.weight[:len(tok)])
    torch.testing.assert_close(method._plan.P, want)


def test_centred_gram_loss_skips_sequences_without_answer_tokens():
    """A sequence whose mask is empty has no Gram; a batch with none at all gives a zero loss that
    still backpropagates (instead of dividing by zero)."""
    torch.manual_seed(0)
    ds, dt = torch.randn(2, 5, 8, requires_grad=True), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    alone = centred_gram_loss(ds[:1], dt[:1], mask[:1])
    assert float(centred_gram_loss(ds, dt, mask)) == pytest.approx(float(alone))
    empty = centred_gram_loss(ds, dt, torch.zeros_like(mask))
    empty.backward()
    assert float(empty) == 0.0 and ds.grad is not None
