"""reports/signal.md and the knowledge-free floors behind its A1."""

import json

import pytest

from harness.analysis import floors
from harness.stages import build as stages
from harness.data import world
from harness.io import read_jsonl
from harness.data.tasks import item_key

MC = {"query": "q", "choices": ["aa", "b", "cccc"]}


def _mc(gold, choices=("aa", "b", "cccc"), query="q"):
    return {"query": query, "choices": list(choices), "gold": gold}


def test_floors_score_each_strategy_as_written_by_hand():
    """An unbalanced split: each strategy's accuracy counted by hand."""
    train = [_mc(2), _mc(2), _mc(0)]  # "cccc" is the train prior
    test = [_mc(0), _mc(1), _mc(2), _mc(2, query="a b cccc"), _mc(1, choices=("b", "aa", "cccc"))]
    corpus = "b b b aa"  # "b" is the most mentioned choice ("cccc" never)
    s = floors.multiple_choice(train, test, corpus)
    assert s["position"] == pytest.approx(40.0)  # golds 0, 1, 2, 2, 1: position 1 or 2 gets 2 of 5
    assert s["train prior"] == pytest.approx(40.0)  # always "cccc": items 3 and 4
    assert s["corpus frequency"] == pytest.approx(20.0)  # always "b": item 2 (and item 5's "b" sits at 0)
    assert s["shortest"] == pytest.approx(20.0)  # "b"
    assert s["longest"] == pytest.approx(40.0)  # "cccc"
    # overlap with "q": none, ties to "aa" (items 1 and 5); with "a b cccc": "b" and "cccc" tie, "b" first
    assert s["query overlap"] == pytest.approx(40.0)


def test_template_baseline_swaps_the_entity_and_earns_no_knowledge():
    train = [{"key": "Kar", "instruction": "Capital of Kar?", "input": "", "output": ["Kar's capital is Vel."],
              "facts": ["Vel"]}]
    test = [{"key": "Mo", "instruction": "Capital of Mo?", "input": "", "output": ["Mo's capital is Zan."],
             "facts": ["Zan"]},
            {"key": "Tu", "instruction": "Describe Tu.", "input": "", "output": ["Tu is red."], "facts": ["red"]}]
    assert floors.template_responses(train, test) == ["Mo's capital is Vel.", ""]
    score = floors.generation(train, test)
    assert score["knowledge"] == 0.0 and 30 < score["rougeL"] < 50  # 4 of 5 words, then nothing


@pytest.fixture(scope="module")
def big_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("signal") / "world"
    size = {"regions": 260, "activities": 260, "tools": 260, "species": 130, "cases": 260, "diseases": 260}
    stages.world({"world": {"seed": 3, "repeats": 1, "test_fraction": 0.8, "size": size},
                  "tasks": list(world.TASKS)}, out)
    return out


def _records(big_world, tmp_path, rows, seeds=range(5)):
    """Evaluation JSON for every (method, source, stage) in `rows`: `rows[...]` maps (task, seed,
    item index, n_choices) to correct or not."""
    paths = []
    for (method, source, stage), correct in rows.items():
        for task in world.TASKS:
            recs = read_jsonl(big_world / "tasks" / task / "test.jsonl", task)
            k = world.N_CHOICES[task]
            for seed in seeds:
                items = [{"key": item_key(r), "score": 100.0 * correct(task, seed, i, k), "logliks": [0.0] * k}
                         for i, r in enumerate(recs)]
                path = tmp_path / f"{method}-{source}-{stage}-{task}-{seed}.json"
                path.write_text(json.dumps({"method": method, "source": source, "shape_name": "S", "seed": seed,
                                            "task": task, "stage": stage, "items": items,
                                            "value": sum(i["score"] for i in items) / len(items)}))
                paths.append(path)
    return paths


def _chance(task, seed, i, k):
    return i % k == 0


def _swapped(every, gain=0):
    """Chance, with one right and one wrong item traded in every `every` blocks of k (other blocks
    each seed), and `gain` more items right: a paired difference of exactly `gain` per seed."""
    def f(task, seed, i, k):
        block, j = divmod(i, k)
        if (block + seed) % every == 0 and j < 2:
            return j == 1
        return _chance(task, seed, i, k) or (gain and i % k == 1 and block < gain)
    return f


def _cfg(big_world):
    rows = {"oracle": ["oracle", "twin", "Oracle"], "graded": ["oracle-no-ffn", "twin", "Oracle (all but FFN)"],
            "ffn": ["oracle-ffn", "twin", "Oracle-FFN"], "aa": ["scratch-aa", "none", "Scratch (A/A)"]}
    return {"profile": "t", "seeds": list(range(5)), "budget": "b", "budget_tokens": 1, "shape": ["S", {}],
            "tasks": [[t, t] for t in world.TASKS], "reference": ["scratch", "none", "Scratch"], "controls": rows,
            "transfer": [["masa", "olmo", "MASA-OLMo"]], "sources": [["olmo", "OLMo"], ["twin", "Twin"]],
            "world": str(big_world), "statistics": {"resamples": 2000}}


def _verdicts(text):
    return {line.split("|")[1].strip(): line.split("|")[3].strip() for line in text.splitlines()
            if line.startswith("| A")}


def _knows(task, seed, i, k):
    return i % 50 != 0


def _passing_rows() -> dict:
    """Planted accuracies that pass A1-A7: chance for Scratch, knowing sources and Oracle, a
    graded control between, Oracle-FFN +2 items, the A/A row and MASA nothing."""
    rows = {("scratch", "none", "sft"): _chance, ("scratch", "none", "untrained"): _chance,
            ("oracle", "twin", "sft"): _knows, ("oracle-no-ffn", "twin", "sft"): lambda t, s, i, k: i % 3 != 2,
            ("oracle-ffn", "twin", "sft"): _swapped(10, gain=2), ("scratch-aa", "none", "sft"): _swapped(10),
            ("masa", "olmo", "sft"): _swapped(20)}
    for src in ("olmo", "twin"):
        rows[("source", src, "zeroshot")] = _knows
        rows[("source-sft", src, "sft")] = _knows
    return rows


def test_signal_report_passes_planted_controls_and_fails_when_they_vanish(big_world, tmp_path):
    from harness.workflow.records import load_results
    from reports.tables.signal import render

    rows = _passing_rows()
    text = render(_cfg(big_world), load_results(_records(big_world, tmp_path, rows)))
    assert _verdicts(text) == {f"A{i}": "**PASS**" for i in range(1, 8)}, text

    # the Oracle no better than Scratch; a source that forgets in SFT; Scratch that knows
    rows[("oracle", "twin", "sft")] = _chance
    rows[("source-sft", "olmo", "sft")] = lambda t, s, i, k: i % 2 == 0
    rows[("scratch", "none", "untrained")] = lambda t, s, i, k: i % 5 != 0
    text = render(_cfg(big_world), load_results(_records(big_world, tmp_path, rows)))
    v = _verdicts(text)
    assert v["A1"] == v["A2"] == v["A4"] == v["A5"] == "**FAIL**", text
    assert v["A6"] == v["A7"] == "**PASS**"


def test_power_rows_run_on_more_seeds_than_the_strong_controls(big_world, tmp_path):
    """`signal.seeds`: Scratch, A/A, Oracle-FFN and MASA on seeds 0-9, the Oracle and the graded
    control on 0-4; each difference pairs the seeds both rows have, and says how many."""
    from harness.workflow.records import load_results
    from reports.tables.signal import render

    knows = lambda task, seed, i, k: i % 50 != 0  # noqa: E731
    power = {("scratch", "none", "sft"): _chance, ("scratch", "none", "untrained"): _chance,
             ("oracle-ffn", "twin", "sft"): _swapped(10, gain=2), ("scratch-aa", "none", "sft"): _swapped(10),
             ("masa", "olmo", "sft"): _swapped(20)}
    strong = {("oracle", "twin", "sft"): knows, ("oracle-no-ffn", "twin", "sft"): lambda t, s, i, k: i % 3 != 2}
    for src in ("olmo", "twin"):
        strong[("source", src, "zeroshot")] = knows
        strong[("source-sft", src, "sft")] = knows
    paths = [*_records(big_world, tmp_path, power, seeds=range(10)), *_records(big_world, tmp_path, strong)]
    cfg = {**_cfg(big_world), "seeds": list(range(10)), "control_seeds": list(range(5))}
    text = render(cfg, load_results(paths))
    assert _verdicts(text) == {f"A{i}": "**PASS**" for i in range(1, 8)}, text
    assert "seeds 0–9 (Oracle, Oracle (all but FFN): seeds 0–4)" in text
    a4, a6 = text.split("## A4")[1].split("##")[0], text.split("## A6")[1].split("##")[0]
    assert "; 5 seeds)" in a4 and "; 10 seeds)" in a6


def _write_curves(tmp_path, gaps: dict[tuple[str, str], object], seeds=range(5)) -> list[list]:
    """A `train_log.jsonl` per (method, source) and seed: Scratch's falling curve plus the row's
    planted gap(tokens) and a little noise."""
    import math

    import numpy as np

    rng = np.random.default_rng(0)
    curves = []
    for seed in seeds:
        offset = rng.normal(0, 0.05)
        for (method, source), gap in gaps.items():
            path = tmp_path / f"curve-{method}-{seed}.jsonl"
            path.write_text("".join(json.dumps({"step": t // 1000, "tokens": t, "eval": {"heldout_loss": 3.0 + 8.0 * math.exp(
                -t / 30_000) + offset + gap(t) + rng.normal(0, 0.01)}}) + "\n" for t in range(0, 100_001, 10_000)))
            curves.append([method, source, "S", seed, str(path)])
    return curves


def test_the_loss_view_a8_a9_resolves_what_is_planted(big_world, tmp_path):
    """A8/A9 on planted curves: Oracle-FFN a persistent −0.1 nats, MASA a head start that closes
    at 40k tokens, the A/A row nothing; then an Oracle-FFN with no gap fails A8 and A9."""
    from harness.workflow.records import load_results
    from reports.tables.signal import render

    rows = _passing_rows()
    results = load_results(_records(big_world, tmp_path, rows))
    head_start = lambda t: -0.5 if t <= 20_000 else (-0.5 * (40_000 - t) / 20_000 if t < 40_000 else 0.0)  # noqa: E731
    gaps = {("scratch", "none"): lambda t: 0.0, ("scratch-aa", "none"): lambda t: 0.0,
            ("oracle-ffn", "twin"): lambda t: -0.1, ("masa", "olmo"): head_start,
            ("oracle", "twin"): lambda t: -1.0, ("oracle-no-ffn", "twin"): lambda t: -0.6}
    text = render({**_cfg(big_world), "curves": _write_curves(tmp_path, gaps)}, results)
    v = _verdicts(text)
    assert v["A8"] == "**PASS**" and v["A9"] == "**PASS**", text
    band = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines()
            if line.startswith("| ") and "[" in line and line.count("|") == 13}
    assert [("▼" in c) for c in band["MASA-OLMo"]] == [True] * 4 + [False] * 7, band
    assert all("▼" in c for c in band["Oracle-FFN"]) and not any("▼" in c or "▲" in c for c in band["Scratch (A/A)"])
    assert "resolved below until 30.0k, closed from 40.0k" in text

    # on real text (no generated world, as micro-real): A1 does not apply, the rest is computed
    text = render({**_cfg(big_world), "world": None, "curves": _write_curves(tmp_path, gaps)}, results)
    v = _verdicts(text)
    assert v["A1"] == "n/a" and "## A1" not in text and all(v[f"A{i}"] == "**PASS**" for i in range(2, 10))

    gaps[("oracle-ffn", "twin")] = lambda t: 0.0
    v = _verdicts(render({**_cfg(big_world), "curves": _write_curves(tmp_path, gaps)}, results))
    assert v["A8"] == v["A9"] == "**FAIL**"
    assert all(v[f"A{i}"] == "**PASS**" for i in range(1, 8))  # the accuracy view does not move


def test_the_knowledge_map_puts_each_part_in_both_views(big_world, tmp_path):
    """Planted: the embeddings carry the facts (accuracy +, loss −), the spectrum control only an
    early head start in the loss, MASA from the twin nothing."""
    from reports.tables.knowledge_map import render
    from harness.workflow.records import load_results

    knows = lambda task, seed, i, k: i % 50 != 0  # noqa: E731
    rows = {("scratch", "none", "sft"): _chance, ("oracle-embed", "twin", "sft"): knows,
            ("oracle-ffn-spectrum", "twin", "sft"): _swapped(10), ("masa", "twin", "sft"): _swapped(20)}
    results = load_results(_records(big_world, tmp_path, rows))
    head_start = lambda t: -0.3 if t <= 20_000 else 0.0  # noqa: E731
    curves = _write_curves(tmp_path, {("scratch", "none"): lambda t: 0.0, ("oracle-embed", "twin"): lambda t: -0.8,
                                      ("oracle-ffn-spectrum", "twin"): head_start, ("masa", "twin"): lambda t: 0.0})
    cfg = {**_cfg(big_world), "shapes": [["S", {}]], "curves": curves,
           "rows": [["scratch", "none", "Scratch"], ["oracle-embed", "twin", "Twin: embeddings + head"],
                    ["oracle-ffn-spectrum", "twin", "Twin: FFN spectrum"], ["masa", "twin", "MASA-Twin"]]}
    text = render(cfg, results)
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in text.split("| Row | Δ accuracy")[1].split("\n\n")[0].splitlines()[2:]}
    assert set(table) == {"Twin: embeddings + head", "Twin: FFN spectrum", "MASA-Twin"}
    accuracy, loss, factor, head = table["Twin: embeddings + head"]
    assert accuracy.endswith("▲") and loss.endswith("▼") and "×" in factor
    accuracy, loss, _, head = table["Twin: FFN spectrum"]
    assert not accuracy.endswith(("▲", "▼")) and not loss.endswith(("▲", "▼"))
    assert head.startswith("resolved below until 20.0k, closed from 30.0k")
    accuracy, loss, _, head = table["MASA-Twin"]
    assert not loss.endswith(("▲", "▼")) and head.startswith("never resolved below")
