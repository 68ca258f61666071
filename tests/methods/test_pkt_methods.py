"""Seeking, LoRA and LaTen: sensitivity against autograd, the block search against brute force,
function-preserving LoRA starts, and LaTen's injection surviving save and reload."""

import json
from pathlib import Path

import pytest
import torch

from baselines.laten import splits
from baselines.seeking import best_block, example_batch, layer_scores, lora_factors, sensitivity
from harness.models import lora
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.api.method import Context
from harness.models.build import build_model, source_config, student_config
from harness.api.registry import load_method
from harness.models.sources import Source
from harness.data.tasks import Task, sft_pair
from harness.data.tokenizer import load_tokenizer, special_ids

SOURCE = {"layers": 3, "hidden": 32, "ffn": 48, "heads": 4, "experts": 4, "top_k": 2, "shared_experts": 1}
STUDENT = {"layers": 2, "hidden": 16, "ffn": 40, "heads": 2}


# ---------------------------------------------------------------- the block search

def brute_force_block(S, rows, cols):
    best, where = None, None
    for i in range(S.shape[0] - rows + 1):
        for j in range(S.shape[1] - cols + 1):
            total = float(S[i:i + rows, j:j + cols].double().sum())
            if best is None or total > best:  # strict: the first maximum in row-major order wins
                best, where = total, (i, j)
    return where


@pytest.mark.parametrize("shape,block", [((7, 9), (3, 4)), ((5, 5), (5, 5)), ((6, 11), (1, 1)), ((9, 4), (8, 3))])
def test_block_search_equals_brute_force(shape, block):
    g = torch.Generator().manual_seed(sum(shape) + sum(block))
    for trial in range(5):
        S = torch.rand(shape, generator=g)
        if trial % 2:  # small integers: many ties, the first in row-major order must win
            S = torch.randint(0, 3, shape, generator=g).float()
        assert best_block(S, *block) == brute_force_block(S, *block)
    assert best_block(torch.zeros(shape), *block) == (0, 0)


def test_a_block_larger_than_the_source_is_refused():
    with pytest.raises(HarnessError, match="does not fit"):
        best_block(torch.ones(4, 4), 5, 2)


def test_lora_factors_are_the_best_rank_r_approximation():
    """Eckart-Young: the residual's Frobenius norm is the root of the dropped singular values' squares."""
    block = torch.randn(13, 9, dtype=torch.float64)
    for rank, scaling in [(1, 1.0), (4, 2.0), (9, 0.5)]:
        B, A = lora_factors(block, rank, scaling)
        s = torch.linalg.svdvals(block)
        assert B.shape == (13, rank) and A.shape == (rank, 9)
        residual = torch.linalg.norm(block - scaling * B.double() @ A.double())
        assert abs(float(residual) - float(s[rank:].pow(2).sum().sqrt())) < 1e-5
    with pytest.raises(HarnessError, match="rank 10 exceeds"):
        lora_factors(block, 10, 1.0)


# ---------------------------------------------------------------- sensitivity

def test_sensitivity_equals_autograd_per_example(tokenizer_dir, world_dir):
    tok = load_tokenizer(tokenizer_dir)
    model = build_model(source_config("s", {**SOURCE, "arch": "olmoe"}, len(tok), 64, special_ids(tok)), 0).eval()
    model.requires_grad_(False)  # as Source.load gives it
    records = Task("boolq", world_dir / "tasks" / "boolq").records("train")[:3]
    batches = [example_batch(tok, sft_pair(r), 64, torch.device("cpu")) for r in records]
    ours = sensitivity(model, batches)

    reference = build_model(model.config, 0).eval()  # an independent copy (MoE kernels take no float64)
    names, params = zip(*reference.named_parameters())
    expected = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in zip(names, params)}
    for batch in batches:
        grads = torch.autograd.grad(reference(**batch).loss, params, allow_unused=True)
        for n, p, g in zip(names, params, grads):
            if g is not None:
                expected[n] += (p.double() * g.double()).abs()
    for n in names:
        torch.testing.assert_close(ours[n].double(), expected[n], rtol=1e-4, atol=1e-9)
    assert not any(p.requires_grad for p in model.parameters())  # frozen again afterwards
    scores = layer_scores(ours, SOURCE["layers"])
    assert float(scores.sum()) == pytest.approx(
        sum(float(s.double().sum()) for n, s in ours.items() if ".layers." in n), rel=1e-9)


def test_sensitivity_keeps_one_gradient_alive_at_a_time(tokenizer_dir, world_dir):
    """A 7B source's gradients and fp32 sums do not fit one GPU beside it: each gradient is
    folded into its sum (kept on the CPU for a GPU model) and freed as soon as it exists."""
    tok = load_tokenizer(tokenizer_dir)
    model = build_model(source_config("s", {**SOURCE, "arch": "olmoe"}, len(tok), 64, special_ids(tok)), 0).eval()
    records = Task("boolq", world_dir / "tasks" / "boolq").records("train")[:2]
    batches = [example_batch(tok, sft_pair(r), 64, torch.device("cpu")) for r in records]
    alive = []  # gradients in existence whenever one is complete (this hook runs before the fold)
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(
            lambda p: alive.append(sum(q.grad is not None for q in model.parameters())))
    sums = sensitivity(model, batches, accumulate_on=torch.device("cpu"))
    assert len(alive) >= len(list(model.parameters())) and set(alive) == {1}
    assert all(s.dtype == torch.float32 and s.device.type == "cpu" for s in sums.values())


# ---------------------------------------------------------------- adapting a student

def write_source(tmp_path: Path, arch: str, tok) -> Source:
    model = build_model(source_config(arch, {**SOURCE, "arch": arch}, len(tok), 64, special_ids(tok)), 0)
    model.save_pretrained(tmp_path / arch / "model")
    tok.save_pretrained(tmp_path / arch / "model")
    atomic_write_json(tmp_path / arch / "source.json", {"name": arch, "arch": arch, "model_path": "model"})
    return Source.from_manifest(tmp_path / arch)


def adapt(name, arch, tmp_path, tokenizer_dir, world_dir, **options):
    tok = load_tokenizer(tokenizer_dir)
    student = build_model(student_config("t", STUDENT, len(tok), 64, special_ids(tok)), 1).eval()
    ids = torch.randint(0, len(tok), (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = student(input_ids=ids).logits
    method = load_method(name)
    ctx = Context(options=options, seed=0, device=torch.device("cpu"), source=write_source(tmp_path, arch, tok),
                  tokenizer=tok)
    adapted = method.adapt(student, Task("boolq", world_dir / "tasks" / "boolq"), ctx).eval()
    with torch.no_grad():
        after = adapted(input_ids=ids).logits
    return adapted, before, after


@pytest.mark.parametrize("arch", ["olmo", "olmoe", "deepseek"])
def test_seeking_student_computes_what_it_did_before(arch, tmp_path, tokenizer_dir, world_dir):
    """At step 0 the effective weights are the student's own (W0' + BA = W0) though the
    adapters hold the source's blocks: identical logits up to float rounding."""
    model, before, after = adapt("seeking", arch, tmp_path, tokenizer_dir, world_dir, samples=4)
    torch.testing.assert_close(after, before, atol=2e-5, rtol=1e-5)
    layers = lora.lora_layers(model)
    assert len(layers) == 7 * STUDENT["layers"]
    seeded = [n for n, l in layers.items() if l.lora_B[lora.ADAPTER].weight.abs().sum() > 0]
    assert len(seeded) == 7 * STUDENT["layers"]


def test_seeking_with_embeddings_keeps_the_function(tmp_path, tokenizer_dir, world_dir):
    modules = [*lora.PROJECTIONS, *lora.EMBEDDINGS]
    model, before, after = adapt("seeking", "olmo", tmp_path, tokenizer_dir, world_dir, samples=2, modules=modules)
    torch.testing.assert_close(after, before, atol=2e-5, rtol=1e-5)
    assert lora.delta_shape(lora.lora_layers(model)["model.embed_tokens"]) == (STUDENT["hidden"], model.config.vocab_size)


@pytest.mark.parametrize("init", ["pissa", "gaussian"])
def test_lora_inits_leave_the_function_unchanged(init, tmp_path, tokenizer_dir, world_dir):
    model, before, after = adapt("lora", "olmo", tmp_path, tokenizer_dir, world_dir, init=init)
    torch.testing.assert_close(after, before, atol=2e-5, rtol=1e-5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_bad_lora_options_are_one_line_errors(tmp_path, tokenizer_dir, world_dir):
    with pytest.raises(HarnessError, match="unknown LoRA init 'svd'"):
        adapt("lora", "olmo", tmp_path, tokenizer_dir, world_dir, init="svd")
    with pytest.raises(HarnessError, match="PiSSA init applies to linear layers only"):
        adapt("lora", "olmo", tmp_path, tokenizer_dir, world_dir, init="pissa", modules=["lm_head"])
    with pytest.raises(HarnessError, match="unknown option 'rnak'"):
        adapt("lora", "olmo", tmp_path, tokenizer_dir, world_dir, rnak=4)


def test_laten_splits_are_disjoint_and_too_few_records_are_refused():
    records = [{"i": i} for i in range(30)]
    extract, align, inject = splits(records, 5, 20)
    ids = [r["i"] for r in extract + align + [inject]]
    assert len(ids) == len(set(ids)) == 26 and splits(records, 5, 20) == (extract, align, inject)
    with pytest.raises(HarnessError, match="need 31"):
        splits(records, 10, 20)


@pytest.mark.parametrize("arch", ["olmo", "olmoe", "deepseek"])
def test_laten_changes_only_up_down_v_o_at_the_chosen_neurons(arch, tmp_path, tokenizer_dir, world_dir):
    model, before, after = adapt("laten", arch, tmp_path, tokenizer_dir, world_dir, extract_examples=3,
                                 align_examples=6, lr=1e-2)
    reference = build_model(model.config, 1)
    changed = {n for (n, p), q in zip(model.named_parameters(), reference.parameters()) if not torch.equal(p, q)}
    allowed = ("mlp.up_proj", "mlp.down_proj", "self_attn.o_proj", "self_attn.v_proj")
    assert changed and all(any(a in n for a in allowed) for n in changed)
    k_ffn = int(0.1 * STUDENT["ffn"])
    up = model.model.layers[0].mlp.up_proj.weight - reference.model.layers[0].mlp.up_proj.weight
    assert int((up.abs().sum(1) > 0).sum()) <= k_ffn  # rows of at most the kept neurons
    assert not torch.equal(after, before)


def test_laten_injection_survives_save_and_reload(tmp_path, tokenizer_dir, world_dir):
    """The sft stage with the no-SFT variant: zero training steps, the injected weights saved."""
    from transformers import AutoModelForCausalLM

    from harness.stages import build as stages

    tok = load_tokenizer(tokenizer_dir)
    student = build_model(student_config("t", STUDENT, len(tok), 64, special_ids(tok)), 1)
    student.save_pretrained(tmp_path / "pre")
    tok.save_pretrained(tmp_path / "pre")
    write_source(tmp_path, "olmo", tok)
    options = {"extract_examples": 3, "align_examples": 6, "lr": 1e-2}
    cfg = {"method": "laten-nosft", "method_options": options, "task": "boolq",
           "sft": {"batch_size": 4, "epochs": 0, "max_len": 64, "optim": {"lr": 1e-3}}}
    stages.sft(cfg, tmp_path / "pre", world_dir / "tasks" / "boolq", 0, tmp_path / "out", tmp_path / "olmo")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["steps"] == 0

    # the same adaptation in memory: the hook is deterministic given the stage's seed
    torch.manual_seed(0)
    ctx = Context(options=options, seed=0, device=torch.device("cpu"),
                  source=Source.from_manifest(tmp_path / "olmo"), tokenizer=tok)
    expected = load_method("laten").adapt(AutoModelForCausalLM.from_pretrained(tmp_path / "pre"),
                                          Task("boolq", world_dir / "tasks" / "boolq"), ctx).eval()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    ids = torch.randint(0, len(tok), (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, expected(input_ids=ids).logits)
        assert not torch.equal(reloaded(input_ids=ids).logits, student.eval()(input_ids=ids).logits)


def test_lora_sft_stage_saves_a_plain_merged_model(tmp_path, tokenizer_dir, world_dir):
    from transformers import AutoModelForCausalLM

    from harness.stages import build as stages

    tok = load_tokenizer(tokenizer_dir)
    build_model(student_config("t", STUDENT, len(tok), 64, special_ids(tok)), 1).save_pretrained(tmp_path / "pre")
    tok.save_pretrained(tmp_path / "pre")
    cfg = {"method": "lora-pissa", "method_options": {}, "task": "boolq",
           "sft": {"batch_size": 8, "epochs": 1, "max_len": 64, "optim": {"lr": 1e-3}}}
    stages.sft(cfg, tmp_path / "pre", world_dir / "tasks" / "boolq", 0, tmp_path / "out")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not any("lora" in n for n, _ in model.named_parameters())
    before = AutoModelForCausalLM.from_pretrained(tmp_path / "pre")
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, before.model.layers[0].mlp.up_proj.weight)


@pytest.mark.parametrize("name", ["seeking", "laten"])
def test_a_row_without_source_is_a_one_line_error(name, tokenizer_dir, world_dir):
    tok = load_tokenizer(tokenizer_dir)
    student = build_model(student_config("t", STUDENT, len(tok), 64, special_ids(tok)), 1)
    ctx = Context(options={}, seed=0, device=torch.device("cpu"), tokenizer=tok)
    with pytest.raises(HarnessError, match=f"{name} needs a source"):
        load_method(name).adapt(student, Task("boolq", world_dir / "tasks" / "boolq"), ctx)
