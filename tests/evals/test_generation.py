"""Batched generation: left padding changes nothing, sampling is seeded, greedy is a plain argmax loop."""

import pytest
import torch

from evals.generation import GenerationConfig, evaluate_generation, generate
from harness.errors import HarnessError
from harness.models.build import build_model, student_config
from harness.data.tokenizer import load_tokenizer, special_ids

PROMPTS = ["Tell me about the river.", "A much longer prompt that takes many more tokens than the first one does.",
           "Why?"]


@pytest.fixture(scope="module")
def model_and_tok(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    cfg = student_config("g", {"layers": 2, "hidden": 32, "ffn": 64, "heads": 2}, len(tok), 128, special_ids(tok))
    return build_model(cfg, 0).eval(), tok


def greedy_reference(model, tok, prompt, max_prompt, max_new):
    """Argmax decoding one token at a time on the full sequence, no cache, no padding."""
    ids = tok(prompt, add_special_tokens=False)["input_ids"][-max_prompt:]
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            out.append(nxt)
    return tok.decode(out, skip_special_tokens=True).strip()


def test_greedy_batches_equal_one_by_one_reference(model_and_tok):
    model, tok = model_and_tok
    cfg = GenerationConfig(max_prompt_tokens=12, max_new_tokens=10, sample=False, batch_size=3)
    got = generate(model, tok, PROMPTS, cfg, seed=0).texts
    assert got == [greedy_reference(model, tok, p, 12, 10) for p in PROMPTS]


def test_sampling_is_deterministic_per_seed(model_and_tok):
    model, tok = model_and_tok
    cfg = GenerationConfig(max_prompt_tokens=16, max_new_tokens=12, batch_size=2)
    a = generate(model, tok, PROMPTS, cfg, seed=10)
    assert generate(model, tok, PROMPTS, cfg, seed=10).texts == a.texts
    assert generate(model, tok, PROMPTS, cfg, seed=20).texts != a.texts
    assert 0 < a.new_tokens <= 3 * 12


def test_evaluation_averages_the_seeds(model_and_tok):
    model, tok = model_and_tok
    records = [{"prompt": p, "references": ["the river"]} for p in PROMPTS]
    cfg = GenerationConfig(max_prompt_tokens=16, max_new_tokens=8, seeds=[1, 2])
    result = evaluate_generation(model, tok, records, cfg)
    assert set(result["per_seed"]) == {"1", "2"}
    assert result["value"] == pytest.approx(sum(result["per_seed"].values()) / 2)
    greedy = evaluate_generation(model, tok, records, GenerationConfig(16, 8, sample=False, seeds=[1, 2]))
    assert list(greedy["per_seed"]) == ["1"]
    # per item: its key and its Rouge-L under each seed, recomputed from the seed's own generations
    from evals.rouge import rouge_l
    from harness.data.tasks import item_key

    items = result["items"]
    assert [i["key"] for i in items] == [item_key(r) for r in records]
    for k, seed in enumerate((1, 2)):
        texts = generate(model, tok, PROMPTS, cfg, seed).texts
        assert [i["per_seed"][k] for i in items] == pytest.approx([rouge_l(t, ["the river"]) for t in texts])
        assert sum(i["per_seed"][k] for i in items) / len(items) == pytest.approx(result["per_seed"][str(seed)])
    assert sum(i["score"] for i in items) / len(items) == pytest.approx(result["value"])


def test_too_long_for_the_model_is_refused(model_and_tok):
    model, tok = model_and_tok
    with pytest.raises(HarnessError, match="exceed the model's 128 positions"):
        generate(model, tok, PROMPTS, GenerationConfig(), seed=0)
    with pytest.raises(HarnessError, match="unknown setting 'top_n'"):
        GenerationConfig.from_dict({"top_n": 3})


def test_fact_recall_counts_whole_word_mentions_of_each_fact():
    from evals.generation import fact_recall

    assert fact_recall("The capital of Karo is Velmi.", ["velmi"]) == 100.0
    assert fact_recall("The capital is Velmira.", ["Velmi"]) == 0.0  # a longer word is not the fact
    assert fact_recall("Use it to split  FIREWOOD!", ["to split firewood", "grain"]) == 50.0
    with pytest.raises(ValueError):
        fact_recall("anything", [])


def test_knowledge_score_is_the_seeds_mean_fact_recall(model_and_tok):
    from evals.generation import fact_recall

    model, tok = model_and_tok
    records = [{"prompt": p, "references": ["the river"], "facts": ["the"]} for p in PROMPTS]
    cfg = GenerationConfig(max_prompt_tokens=16, max_new_tokens=8, seeds=[1, 2])
    result = evaluate_generation(model, tok, records, cfg)
    texts = [generate(model, tok, PROMPTS, cfg, seed).texts for seed in (1, 2)]
    expected = [(fact_recall(a, ["the"]) + fact_recall(b, ["the"])) / 2 for a, b in zip(*texts)]
    assert [i["knowledge"] for i in result["items"]] == pytest.approx(expected)
    assert result["knowledge"] == pytest.approx(sum(expected) / len(expected))
    plain = evaluate_generation(model, tok, [{k: v for k, v in r.items() if k != "facts"} for r in records], cfg)
    assert "knowledge" not in plain and "knowledge" not in plain["items"][0]
