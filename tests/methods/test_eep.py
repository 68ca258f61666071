"""Pruning-EEP: the candidate MoE against a direct reference, the search on a planted problem,
the dense merge, and the student reaching its exact shape."""

import json

import pytest
import torch
import torch.nn.functional as F

from baselines.eep import (DEFAULTS, Genome, MoECandidates, crossover, dense_llama, evolutionary_search,
                           keep_set_genome, layer_groups, normalise_rows, prune_move)
from harness.errors import HarnessError
from harness.models.build import build_model, source_config

VOCAB = 64


def olmoe(experts=4, top_k=2, layers=2, norm=False, seed=0):
    spec = {"arch": "olmoe", "layers": layers, "hidden": 32, "ffn": 16, "heads": 4, "experts": experts,
            "top_k": top_k}
    config = source_config("s", spec, VOCAB, 32)
    config.norm_topk_prob = norm
    return build_model(config, seed).eval()


def ids(n=2, t=12, seed=0):
    return torch.randint(0, VOCAB, (n, t), generator=torch.Generator().manual_seed(seed))


def reference_block(x, gate_w, gate_up, down, M, R, top_k, norm):
    """EEP's candidate MoE block written token by token: merged experts sum_j M[i, j] E_j,
    q = softmax(gate x) R^T, top-k of q (renormalised iff norm)."""
    inter = gate_up.shape[1] // 2
    merged_gu = torch.einsum("ke,eoh->koh", M, gate_up)
    merged_down = torch.einsum("ke,eoh->koh", M, down)
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        q = torch.softmax(gate_w @ x[n], -1) @ R.T
        values, index = torch.topk(q, top_k)
        if norm:
            values = values / values.sum()
        for w, i in zip(values, index):
            h = merged_gu[i] @ x[n]
            out[n] += w * (merged_down[i] @ (F.silu(h[:inter]) * h[inter:]))
    return out


def test_identity_keep_set_reproduces_the_source():
    model = olmoe()
    want = model(input_ids=ids()).logits
    MoECandidates(model).apply(keep_set_genome([[0, 1, 2, 3]] * 2, 4))
    assert torch.equal(model(input_ids=ids()).logits, want)


@pytest.mark.parametrize("norm", [False, True])
def test_candidate_block_equals_reference(norm):
    model = olmoe(experts=5, top_k=2, norm=norm)
    mlp = model.model.layers[0].mlp
    gate_w, gate_up, down = mlp.gate.weight.clone(), mlp.experts.gate_up_proj.clone(), mlp.experts.down_proj.clone()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 32, generator=g)
    cands = MoECandidates(model)
    # a one-hot keep-set, then a merged candidate with dense M and R (k = 3 < E = 5)
    for genome in [keep_set_genome([[4, 1, 2]] * 2, 5),
                   Genome(torch.rand(2, 3, 5, generator=g), torch.rand(2, 3, 5, generator=g))]:
        cands.apply(genome)
        want = reference_block(x, gate_w, gate_up, down, genome.M[0], genome.R[0], 2, norm)
        assert torch.allclose(mlp(x[None])[0], want, atol=1e-5)
    cands.restore()
    assert torch.equal(mlp.experts.gate_up_proj, gate_up)


def test_layer_groups():
    assert layer_groups(5, 1) == [0, 1, 2, 3, 4]
    assert layer_groups(5, 2) == [0, 0, 1, 1, 2]
    with pytest.raises(HarnessError):
        layer_groups(4, 0)


def test_operators_keep_their_invariants():
    import numpy as np

    rng = np.random.default_rng(0)
    parent = keep_set_genome([[0, 1, 2], [3, 4, 5]], 8)
    for _ in range(50):
        child = prune_move(parent, np.array([[True, False], [False, False]]), 0.5, rng)
        assert torch.equal(child.M, child.R) and torch.equal(child.M[1], parent.M[1])
        assert not torch.equal(child.M, parent.M)  # something moved
        assert len(set(child.M[0].argmax(1).tolist())) == 3  # still 3 distinct experts
    other = keep_set_genome([[5, 6, 7], [0, 1, 2]], 8)
    child = crossover(parent, other, np.array([[True, False], [False, True]]), 0.6, rng)
    for i in range(3):  # changed groups take each row from one parent, unchanged ones come from parent 1
        assert any(torch.equal(child.M[0, i], p.M[0, i]) for p in (parent, other))
    assert torch.equal(child.M[1], parent.M[1]) and torch.equal(child.R[0], parent.R[0])
    g = normalise_rows(Genome(torch.tensor([[[2.0, 2.0], [0.0, 0.0]]]), torch.ones(1, 2, 2)))
    assert torch.equal(g.M, torch.tensor([[[0.5, 0.5], [0.0, 0.0]]])) and torch.equal(g.R, torch.ones(1, 2, 2))


def planted_source(layers=3):
    """E = 8 experts in 4 pairs of exact copies (expert e and e + 4, router rows too), top-1
    routing: a keep-set of k = 4 reproduces the source exactly iff it holds one of each pair."""
    model = olmoe(experts=8, top_k=1, layers=layers, seed=5)
    with torch.no_grad():
        for layer in model.model.layers:
            mlp = layer.mlp
            mlp.gate.weight.normal_(0, 1.0)
            mlp.gate.weight[4:] = mlp.gate.weight[:4]
            mlp.experts.gate_up_proj[4:] = mlp.experts.gate_up_proj[:4]
            mlp.experts.down_proj[4:] = mlp.experts.down_proj[:4]
    return model


@pytest.mark.parametrize("seed", [0, 1])
@torch.no_grad()
def test_search_finds_the_planted_keep_set(seed):
    model = planted_source()
    x = ids(4, 16, seed=1)
    want = model(input_ids=x).logits
    cands = MoECandidates(model)

    def fitness(genome):
        cands.apply(genome)
        return -1e6 * float((model(input_ids=x).logits - want).pow(2).mean())

    # the parent margin is in fitness units: here one wrong expert costs ~0.2-1.3
    opts = {**DEFAULTS, "population": 8, "prune_archive": 120, "merge_archive": 120, "prune_margin": 0.05}
    bests = []
    archive = evolutionary_search(fitness, cands.n_groups, 4, 8, opts, seed=seed,
                                  on_eval=lambda n, s, best: bests.append(best))
    initial = [s.fitness for s in archive if s.stage == "init"]
    best = archive[0]
    assert best.fitness > -1e-6 > max(initial)  # random keep-sets miss it; the search finds it
    for g in range(cands.n_groups):  # one expert of each copy pair
        assert sorted(e % 4 for e in best.genome.M[g].argmax(1).tolist()) == [0, 1, 2, 3]
    assert bests == sorted(bests) and len(bests) == 120  # the archive's best never gets worse
    assert [s.fitness for s in archive] == sorted((s.fitness for s in archive), reverse=True)


@torch.no_grad()
def test_merging_stage_runs_and_changes_coefficients():
    model = olmoe(experts=4, top_k=2)
    cands = MoECandidates(model)
    x = ids()
    want = model(input_ids=x).logits

    def fitness(genome):
        cands.apply(genome)
        return -float((model(input_ids=x).logits - want).pow(2).mean())

    opts = {**DEFAULTS, "population": 4, "prune_archive": 6, "merge_archive": 30}
    archive = evolutionary_search(fitness, cands.n_groups, 2, 4, opts, seed=1)
    merged = [s for s in archive if s.stage == "merge"]
    assert len(archive) == 30 and len(merged) == 24
    assert any(not torch.equal(s.genome.M, s.genome.R) for s in merged)  # M and R evolve independently


def test_bad_budget_is_refused():
    with pytest.raises(HarnessError, match="experts_kept must lie in 1..4"):
        evolutionary_search(lambda g: 0.0, 1, 5, 4, DEFAULTS, seed=0)
    dense = build_model(source_config("o", {"arch": "olmo", "layers": 1, "hidden": 32, "ffn": 32, "heads": 4},
                                      VOCAB, 32), 0)
    with pytest.raises(HarnessError, match="standard MoE"):
        MoECandidates(dense)


# ---------------------------------------------------------------- dense merge

def test_dense_ffn_is_the_routing_weighted_mix_of_kept_experts():
    model = olmoe(experts=4, top_k=2, norm=True)
    cands = MoECandidates(model)
    cands.apply(Genome(torch.rand(2, 2, 4, generator=torch.Generator().manual_seed(0)),
                       keep_set_genome([[1, 2]] * 2, 4).R))
    dense, route = dense_llama(cands, ids(4, 16, seed=2))
    for layer in (0, 1):
        w = torch.tensor(route[layer])
        assert w.sum().item() == pytest.approx(1.0)  # renormalised top-2 of 2: weights sum to one per token
        experts = model.model.layers[layer].mlp.experts
        x = torch.randn(5, 32)
        want = sum(w[i] * (experts.down_proj[i] @ (F.silu(experts.gate_up_proj[i, :16] @ x.T) *
                                                    (experts.gate_up_proj[i, 16:] @ x.T))) for i in range(2)).T
        assert torch.allclose(dense.model.layers[layer].mlp(x), want, atol=1e-5)


def test_single_kept_expert_with_renormalised_routing_is_exact():
    model = olmoe(experts=4, top_k=2, norm=True)
    cands = MoECandidates(model)
    cands.apply(keep_set_genome([[3], [0]], 4))
    dense, route = dense_llama(cands, ids(2, 8))
    assert route == [[1.0], [1.0]]
    x = torch.randn(1, 6, 32)
    for layer in (0, 1):
        assert torch.allclose(dense.model.layers[layer].mlp(x), model.model.layers[layer].mlp(x), atol=1e-6)


def test_qk_norm_is_folded_with_the_calibration_rms():
    model = olmoe()
    cands = MoECandidates(model)
    cands.apply(keep_set_genome([[0, 1]] * 2, 4))
    calibration = ids(3, 10, seed=4)
    captured = []
    attn = model.model.layers[1].self_attn
    h = attn.q_norm.register_forward_pre_hook(lambda m, a: captured.append(a[0].detach()))
    model(input_ids=calibration)
    h.remove()
    q = captured[0].reshape(-1, 32)
    mean_rms = torch.sqrt(q.pow(2).mean(-1) + attn.q_norm.variance_epsilon).mean()
    dense, _ = dense_llama(cands, calibration)
    want = attn.q_norm.weight[:, None] * attn.q_proj.weight / mean_rms
    assert torch.allclose(dense.model.layers[1].self_attn.q_proj.weight, want, atol=1e-6)


# ---------------------------------------------------------------- end to end through the stages

@pytest.fixture(scope="module")
def eep_artifact(world_dir, tokenizer_dir, tokens_file, tmp_path_factory):
    from harness.stages import build as stages
    from harness.data.tokenizer import load_tokenizer, special_ids

    root = tmp_path_factory.mktemp("eep")
    tok = load_tokenizer(tokenizer_dir)
    spec = {"arch": "olmoe", "layers": 3, "hidden": 32, "ffn": 16, "heads": 4, "experts": 6, "top_k": 2}
    src = build_model(source_config("olmoe", spec, len(tok), 64, special_ids(tok)), 0)
    src.save_pretrained(root / "source" / "model")
    tok.save_pretrained(root / "source" / "model")
    (root / "source" / "source.json").write_text(json.dumps({"name": "olmoe", "arch": "olmoe", "model_path": "model"}))
    options = {"experts_kept": 2, "population": 3, "prune_archive": 6, "merge_archive": 10, "fitness_examples": 4,
               "dev_examples": 3, "dev_top": 4, "calibration_sequences": 4}
    cfg = {"method": "pruning-eep", "method_options": options, "seed": 0, "seq_len": 32}
    tasks = [world_dir / "tasks" / t for t in ("boolq", "piqa")]
    stages.extract(cfg, root / "source", root / "artifact", tokens_file, tasks, world_dir / "domains")
    return root, cfg


def test_extract_records_the_search(eep_artifact):
    root, _ = eep_artifact
    art = root / "artifact"
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["experts_kept"] == 2 and manifest["evaluations"] == 10 and manifest["groups"] == 3
    log = [json.loads(l) for l in (art / "search_log.jsonl").read_text().splitlines()]
    assert len(log) == 10 and [r["best"] for r in log] == sorted(r["best"] for r in log)
    assert manifest["fitness"]["best"] >= manifest["fitness"]["random_keep_sets_max"]
    assert [len(g) for g in manifest["kept_experts"]] == [2, 2, 2]  # k rows per layer group
    assert (art / "dense" / "config.json").is_file() and (art / "genome.safetensors").is_file()


@pytest.mark.parametrize("shape,importance", [({"layers": 2, "hidden": 16, "ffn": 24, "heads": 2}, "magnitude"),
                                              ({"layers": 3, "hidden": 24, "ffn": 32, "heads": 4}, "taylor"),
                                              ({"layers": 1, "hidden": 32, "ffn": 20, "heads": 8}, "magnitude")])
def test_student_has_the_exact_shape_and_loads(eep_artifact, tokenizer_dir, tmp_path, shape, importance):
    from transformers import AutoModelForCausalLM

    from harness.stages import build as stages
    from harness.models.build import param_count, student_config
    from harness.data.tokenizer import load_tokenizer

    root, cfg = eep_artifact
    init_cfg = {**cfg, "method_options": {**cfg["method_options"], "importance": importance},
                "shape_name": "s", "shape": shape}
    stages.init(init_cfg, tokenizer_dir, 0, tmp_path / "init", root / "source", root / "artifact")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "init")
    assert type(model).__name__ == "LlamaForCausalLM"
    config = student_config("s", shape, len(load_tokenizer(tokenizer_dir)), 32)
    assert sum(p.numel() for p in model.parameters()) == param_count(config)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.num_attention_heads) == \
           (shape["layers"], shape["hidden"], shape["ffn"], shape["heads"])
    assert torch.isfinite(model(input_ids=ids(1, 8) % c.vocab_size).logits).all()


def test_student_larger_than_the_source_is_refused(eep_artifact, tokenizer_dir, tmp_path):
    from harness.stages import build as stages

    root, cfg = eep_artifact
    init_cfg = {**cfg, "shape_name": "big", "shape": {"layers": 3, "hidden": 64, "ffn": 32, "heads": 4}}
    with pytest.raises(HarnessError, match="cannot grow the hidden size: 32 -> 64"):
        stages.init(init_cfg, tokenizer_dir, 0, tmp_path / "init", root / "source", root / "artifact")
    assert not (tmp_path / "init").exists()
