"""Distillation's KD loss against a float64 reference, its CE limit, and the teacher checks."""

import pytest
import torch

from baselines.distill import Distillation, kd_loss, token_kl
from harness.errors import HarnessError
from harness.api.method import Context
from harness.models.build import build_model, source_config, student_config
from harness.models.sources import Source

VOCAB = 50


def reference_kd(student_logits, teacher_logits, labels, temperature):
    """Mean over positions whose next label counts of T^2 * sum_v pT (log pT - log pS), float64."""
    s = student_logits.double() / temperature
    t = teacher_logits.double() / temperature
    total, n = 0.0, 0
    for b in range(labels.shape[0]):
        for i in range(labels.shape[1] - 1):
            if labels[b, i + 1] == -100:
                continue
            pt = torch.softmax(t[b, i], -1)
            total += float((pt * (torch.log_softmax(t[b, i], -1) - torch.log_softmax(s[b, i], -1))).sum())
            n += 1
    return total * temperature ** 2 / n


@pytest.mark.parametrize("temperature,chunk", [(1.0, 4096), (2.0, 3), (0.5, 1)])
def test_kd_loss_matches_float64_reference(temperature, chunk):
    g = torch.Generator().manual_seed(0)
    B, T, H = 3, 7, 5
    student = torch.randn(B, T, VOCAB, generator=g) * 3
    hidden = torch.randn(B, T, H, generator=g)
    head = torch.nn.Linear(H, VOCAB, bias=False)
    torch.nn.init.normal_(head.weight, std=2.0, generator=g)
    labels = torch.randint(0, VOCAB, (B, T), generator=g)
    labels[0, 3:] = -100  # padding / prompt positions the CE skips
    labels[2, 1] = -100
    got = kd_loss(student, labels, hidden, head, temperature, chunk)
    want = reference_kd(student, head(hidden).detach(), labels, temperature)
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_token_kl_is_zero_on_equal_distributions_and_finite_with_masked_logits():
    x = torch.randn(4, VOCAB)
    assert torch.allclose(token_kl(x, x), torch.zeros(4), atol=1e-6)
    teacher = x.clone()
    teacher[:, :10] = float("-inf")  # tokens the teacher rules out contribute nothing
    kl = token_kl(x, teacher)
    assert torch.isfinite(kl).all() and (kl > 0).all()


def tiny_pair(tmp_path, arch="olmo", teacher_vocab=VOCAB):
    spec = {"arch": arch, "layers": 2, "hidden": 32, "ffn": 32, "heads": 4, "experts": 4, "top_k": 2,
            "shared_experts": 1}
    teacher = build_model(source_config("t", spec, teacher_vocab, 32), 1)
    teacher.save_pretrained(tmp_path / "teacher")
    student = build_model(student_config("s", {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}, VOCAB, 32), 2)
    ctx = Context(options={}, seed=0, device=torch.device("cpu"), source=Source("t", arch, str(tmp_path / "teacher")))
    return teacher, student, ctx


def batch(seed=0):
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "labels": ids}


def test_alpha_zero_is_exactly_the_cross_entropy_and_alpha_one_the_kd(tmp_path):
    teacher, student, ctx = tiny_pair(tmp_path)
    b = batch()
    ce = student(**b).loss
    ctx.options = {"alpha": 0.0}
    assert torch.equal(Distillation().pretrain_loss(b, student, ctx), ce)
    ctx.options = {"alpha": 1.0}
    kd = Distillation().pretrain_loss(b, student, ctx)
    teacher.eval()
    want = reference_kd(student(**b).logits.detach(), teacher(input_ids=b["input_ids"]).logits.detach(),
                        b["labels"], 1.0)
    assert float(kd.detach()) == pytest.approx(want, rel=1e-5)
    ctx.options = {}  # default alpha 0.5
    mixed = Distillation().pretrain_loss(b, student, ctx).detach()
    assert float(mixed) == pytest.approx(0.5 * float(ce.detach()) + 0.5 * want, rel=1e-5)


@pytest.mark.parametrize("arch", ["olmo", "olmoe", "deepseek"])
def test_chunked_teacher_logits_equal_the_teachers_own(tmp_path, arch):
    """The teacher's logits are rebuilt from base model + output head; that must be its forward."""
    teacher, student, ctx = tiny_pair(tmp_path, arch)
    ctx.options = {"alpha": 1.0, "chunk_tokens": 5}
    b = batch(1)
    got = Distillation().pretrain_loss(b, student, ctx)
    want = reference_kd(student(**b).logits.detach(), teacher.eval()(input_ids=b["input_ids"]).logits.detach(),
                        b["labels"], 1.0)
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_only_the_student_gets_gradients(tmp_path):
    _, student, ctx = tiny_pair(tmp_path)
    method = Distillation()
    method.pretrain_loss(batch(), student, ctx).backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert all(p.grad is None and not p.requires_grad for p in method._teacher.parameters())


def test_a_teacher_with_fewer_tokens_is_refused(tmp_path):
    _, student, ctx = tiny_pair(tmp_path, teacher_vocab=VOCAB - 7)
    with pytest.raises(HarnessError, match="vocabulary of 43 tokens, the student 50"):
        Distillation().pretrain_loss(batch(), student, ctx)


def test_a_padded_teacher_vocabulary_distils_like_the_teacher_cut_to_the_students_tokens(tmp_path):
    """OLMo-7B-hf's 50,304 rows for 50,280 tokens: the KD is the one of the same teacher with its
    rows past the student's tokens removed."""
    padded, student, ctx = tiny_pair(tmp_path, teacher_vocab=VOCAB + 14)
    cut = build_model(padded.config.__class__(**{**padded.config.to_dict(), "vocab_size": VOCAB}), 0)
    cut.load_state_dict({k: v[:VOCAB] if k in ("model.embed_tokens.weight", "lm_head.weight") else v
                         for k, v in padded.state_dict().items()})
    cut.save_pretrained(tmp_path / "cut")
    ctx.options = {"alpha": 1.0}
    got = Distillation().pretrain_loss(batch(3), student, ctx)
    want = Distillation().pretrain_loss(batch(3), student, Context({"alpha": 1.0}, 0, torch.device("cpu"),
                                                                    Source("c", "olmo", str(tmp_path / "cut"))))
    assert torch.equal(got, want)


def test_no_teacher_and_bad_options_are_one_line_errors(tmp_path):
    _, student, ctx = tiny_pair(tmp_path)
    with pytest.raises(HarnessError, match="unknown option 'kd_ratio'"):
        Distillation().pretrain_loss(batch(), student, Context({"kd_ratio": 1}, 0, torch.device("cpu"), ctx.source))
    with pytest.raises(HarnessError, match="needs a teacher"):
        Distillation().pretrain_loss(batch(), student, Context({}, 0, torch.device("cpu")))


def test_pretrain_stage_distils_from_the_rows_source(tmp_path, tokenizer_dir, tokens_file):
    """The stage the workflow runs: teacher from the source manifest, tokenizers compared, KD loss logged."""
    import json

    from harness.stages import build as stages
    from tests.models.test_models import SOURCES
    from tests.models.test_sources import TRAINING

    stages.source({"source": SOURCES["olmo"], "seed": 0, "training": TRAINING}, "olmo", tokenizer_dir, tokens_file,
                  tmp_path / "olmo")
    shape = {"layers": 1, "hidden": 16, "ffn": 32, "heads": 2}
    stages.init({"method": "distill", "shape_name": "t", "shape": shape, "seq_len": 32}, tokenizer_dir, 0,
                tmp_path / "init", tmp_path / "olmo")
    cfg = {"method": "distill", "method_options": {"alpha": 0.5}, "shape_name": "t", "budget": 32 * 4 * 3,
           "pretrain": {"seq_len": 32, "batch_size": 4, "log_every": 1, "optim": {"lr": 1e-3}}}
    stages.pretrain(cfg, tokens_file, 0, tmp_path / "pre", tmp_path / "olmo", init_dir=tmp_path / "init")
    record = json.loads((tmp_path / "pre" / "run.json").read_text())
    assert record["tokens"] == 32 * 4 * 3 and record["final_loss"] > 0
