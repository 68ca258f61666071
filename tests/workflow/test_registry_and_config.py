"""Method registry and config validation: unknown names fail in one line."""

import copy

import pytest

from harness.workflow.config import load_profile, merge, resolve, validate
from harness.errors import HarnessError
from harness.api.registry import load_method, method_names


def test_scratch_is_registered_and_loads():
    assert "scratch" in method_names()
    m = load_method("scratch")
    assert m.name == "scratch" and m.variant_options == {}


def test_unknown_method_suggests_the_closest_name():
    with pytest.raises(HarnessError) as e:
        load_method("scrach")
    msg = str(e.value)
    assert "did you mean 'scratch'" in msg and "\n" not in msg


@pytest.mark.parametrize("profile", ["micro", "smoke", "paper"])
def test_shipped_profiles_validate(profile):
    config = load_profile(profile)
    assert config["profile"] == profile


def test_unknown_key_names_key_and_allowed_keys():
    config = load_profile("micro")
    config["pretrain"]["learning_rate"] = 1e-3
    with pytest.raises(HarnessError) as e:
        validate(config)
    msg = str(e.value)
    assert "'learning_rate'" in msg and "batch_size" in msg and "\n" not in msg


def test_unknown_method_in_config():
    config = load_profile("micro")
    config["methods"].append({"name": "masaa", "source": "olmo"})
    with pytest.raises(HarnessError, match="unknown method 'masaa'"):
        validate(config)


def test_unknown_source_in_row():
    config = load_profile("micro")
    config["methods"] = [{"name": "scratch", "source": "llama"}]
    with pytest.raises(HarnessError, match="unknown source 'llama'.*olmo"):
        validate(config)


def test_bad_value_type():
    config = load_profile("micro")
    config["seeds"] = ["zero"]
    with pytest.raises(HarnessError, match=r"seeds\[0\]"):
        validate(config)


def test_null_deletes_a_default_key():
    base = load_profile("micro")
    config = resolve(merge(base, {"shapes": {"4L-0.5M": None}}))
    assert "4L-0.5M" not in config["shapes"] and len(config["shapes"]) == len(base["shapes"]) - 1


def test_pkt_section_names_known_shapes_tasks_and_methods():
    base = load_profile("micro")
    with pytest.raises(HarnessError, match="pkt.shape: unknown shape '3L-0.4M'"):
        resolve(merge(base, {"shapes": {"3L-0.4M": None}}))
    bad_row = copy.deepcopy(base)
    bad_row["pkt"]["rows"].append({"name": "seekign", "source": "olmo"})
    with pytest.raises(HarnessError, match="pkt.rows\\[9\\]: unknown method 'seekign'; did you mean 'seeking'"):
        validate(bad_row)
    bad_task = copy.deepcopy(base)
    bad_task["pkt"]["tasks"] = ["boolq", "mmlu"]
    with pytest.raises(HarnessError, match="pkt.tasks: unknown task 'mmlu'"):
        validate(bad_task)


def test_report_budget_must_exist():
    config = copy.deepcopy(load_profile("micro"))
    config["report_budget"] = "7B"
    with pytest.raises(HarnessError, match="unknown budget '7B'"):
        validate(config)


def test_entry_point_methods_are_discovered_and_duplicates_refused(monkeypatch):
    """Methods living in other packages arrive through the `harness.methods` entry-point group."""
    from importlib.metadata import EntryPoint

    from harness.api import plugins
    from harness.api import registry

    def fake_entry_points(group):
        return [EntryPoint("outside", "baselines.scratch:Scratch", group)] if group == "harness.methods" else []

    monkeypatch.setattr(plugins, "entry_points", fake_entry_points)
    registry.METHODS.clear()
    try:
        assert "outside" in method_names()
        assert load_method("outside").name == "outside"
        monkeypatch.setattr(plugins, "entry_points",
                            lambda group: [EntryPoint("scratch", "baselines.scratch:Scratch", group)])
        registry.METHODS.clear()
        with pytest.raises(HarnessError, match="registered twice"):
            method_names()
    finally:
        registry.METHODS.clear()


def test_paired_comparison_and_heldout_sections_are_checked():
    from harness.workflow.grid import reference_row
    from reports.tables.table_pkt import reference_row as pkt_reference_row

    base = load_profile("micro")
    assert reference_row(base) == ("scratch", "none", "Scratch")
    assert pkt_reference_row(base) == ("lora", "none", "LoRA (random init)")
    for diff, message in [({"compare_to": "Scrach"}, "compare_to: unknown row 'Scrach'; did you mean 'Scratch'"),
                          ({"pkt": {"compare_to": "LoRA"}}, "pkt.compare_to: unknown row 'LoRA'"),
                          ({"pkt": {"also_compare_to": ["Seeking", "Laten"]}},
                           "pkt.also_compare_to: unknown row 'Laten'"),
                          ({"efficiency": {"rows": ["MASA"]}}, "efficiency.rows: unknown row 'MASA'"),
                          ({"efficiency": {"shapes": ["9L"]}}, "efficiency.shapes: unknown shape '9L'"),
                          ({"heldout": None}, "the data-efficiency report needs a `heldout` section"),
                          ({"source_training": {"seq_len": 64}}, "source_training.seq_len must equal it")]:
        with pytest.raises(HarnessError, match=message):
            resolve(merge(base, diff))
    # without `compare_to` the first row is the reference
    no_ref = copy.deepcopy(base)
    del no_ref["compare_to"]
    assert reference_row(resolve(no_ref)) == reference_row(base)


def test_twin_source_budget_in_passes_and_signal_section_are_checked():
    from reports.tables.signal import signal_controls

    base = load_profile("micro")
    twin = base["sources"]["twin"]
    assert (twin["layers"], twin["hidden"], twin["ffn"], twin["heads"]) == (4, 128, 256, 4)  # from shape 4L-1.2M
    assert signal_controls(base)["ffn"] == ("oracle-ffn", "twin", "Oracle-FFN")
    for diff, message in [
            ({"sources": {"twin": {"shape": "9L"}}}, "sources.twin.shape: unknown shape '9L'"),
            ({"source_training": {"budget": 1000}}, "give exactly one of `budget` \\(tokens\\) or `passes`"),
            ({"source_training": {"passes": None}}, "give exactly one of `budget`"),
            ({"signal": {"transfer": ["MASA"]}}, "signal.transfer: unknown row 'MASA'"),
            ({"signal": {"controls": {"oracle": {"name": "orcale", "source": "twin"}}}},
             "signal.controls.oracle: unknown method 'orcale'; did you mean 'oracle'"),
            ({"signal": {"sources": ["olmo2"]}}, "signal.sources: unknown source 'olmo2'"),
            ({"signal": {"seeds": [0, 1, 2, 3, 9]}}, r"signal.seeds must include every seed of `seeds`; missing \[4\]"),
            ({"signal": {"map": [{"name": "oracle-embed", "source": "twin2"}]}}, r"signal.map\[0\]: unknown source")]:
        with pytest.raises(HarnessError, match=message):
            resolve(merge(base, diff))
    # on real text the report runs without A1 (tests/reports/test_signal.py), the twin trained on that text
    real = load_profile("micro-real")
    assert real["signal"]["controls"] == base["signal"]["controls"] and "map" not in real["signal"]
    assert real["sources"]["twin"]["shape"] == "4L-1.2M" and real["corpus"]["kind"] == "local"


def test_a_budget_below_one_batch_and_heads_that_do_not_divide_hidden_fail_before_any_job():
    config = load_profile("micro")
    small = merge(config, {"budgets": {"100k": {"tokens": 8 * 128 - 1}}})
    with pytest.raises(HarnessError, match=r"budgets.100k: 1023 tokens is smaller than one pre-training batch"):
        validate(small)
    shape = next(iter(config["shapes"]))
    odd = merge(config, {"shapes": {shape: {"heads": 3}}})
    with pytest.raises(HarnessError, match=rf"shapes.{shape}: 3 heads do not divide hidden size"):
        validate(odd)


def test_a_per_task_metric_names_a_task_and_a_metric():
    config = load_profile("micro")
    config["eval"]["task_metrics"] = {"hellaswag": "acc_norm"}
    validate(config)
    config["eval"]["task_metrics"] = {"helaswag": "acc_norm"}
    with pytest.raises(HarnessError, match="eval.task_metrics: unknown task 'helaswag'; did you mean 'hellaswag'"):
        validate(config)
    config["eval"]["task_metrics"] = {"hellaswag": "f1"}
    with pytest.raises(HarnessError, match="task_metrics"):
        validate(config)


def test_corpus_subsets_need_folder_domains_and_a_corpus_without_domains_drops_figure_4():
    """Issue 18 item 4: Figure 4 aligns on one corpus domain at a time; a profile whose corpus
    has none plans no Figure 4 (it would fail in its extract jobs), one with domains does."""
    from harness.workflow.grid import Grid
    from harness.workflow.report import enabled_reports

    config = load_profile("micro-real")
    config["corpus"]["subsets"] = ["wikitext2"]
    with pytest.raises(HarnessError, match="`subsets` names folders, so it needs `domains: folder`"):
        validate(config)
    plain = load_profile("micro-real")
    plain["ablation"] = load_profile("micro")["ablation"]  # micro-real leaves the ablations out
    names = [r.name for r in enabled_reports(Grid(plain))]
    assert "table5" in names and "fig4" not in names
    assert "fig4" in [r.name for r in enabled_reports(Grid(load_profile("paper")))]  # RedPajama's subsets
    assert "fig4" in [r.name for r in enabled_reports(Grid(load_profile("micro")))]  # the world's domains


def test_sources_until_convergence_reaches_every_source_sft_job():
    """L160's "until convergence": a `source_sft.dev` section with `patience` reaches the
    sources' SFT of every task, multiple-choice and generation alike, and not the students';
    one that multiple-choice tasks cannot compute is refused before any job."""
    from harness.workflow.grid import Grid

    converge = {"epochs": 20, "dev": {"metric": "loss", "every_epochs": 1, "patience": 2, "holdout": 0.1,
                                      "keep": "best"}}
    config = merge(load_profile("paper"), {"source_sft": converge})
    validate(config)
    grid = Grid(config)
    for task in ("boolq", "dolly"):
        sft = grid.sft_slice(None, task)["sft"]
        assert sft["dev"] == converge["dev"] and sft["epochs"] == 20 and sft["fsdp"]
    assert "dev" not in grid.sft_slice("masa", "boolq")["sft"]
    assert grid.sft_slice("masa", "dolly")["sft"]["dev"]["keep"] == "best"  # the students: MiniLLM's Rouge-L protocol
    for bad in ({"every_epochs": 1, "holdout": 0.1}, {"every_epochs": 1, "metric": "loss"}):
        with pytest.raises(HarnessError, match="source_sft.dev: the multiple-choice tasks have no dev split"):
            validate(merge(load_profile("paper"), {"source_sft": {"dev": bad}}))
    no_dev = merge(load_profile("paper"), {"generation_tasks": {"dolly": {"dev": None}}})
    with pytest.raises(HarnessError, match="generation_tasks.dolly: no dev file for sft_generation.dev"):
        validate(resolve(no_dev))


@pytest.mark.parametrize("diff,message", [
    ({"budgets": {"250k": {"tokens": 256000.0}}}, r"budgets.250k.tokens: 256000.0 is not of type 'integer'"),
    ({"seeds": [0, 1.0]}, r"seeds\[1\]: 1.0 is not of type 'integer'"),
    ({"shapes": {"x" * 65: {"layers": 1, "hidden": 32, "ffn": 64, "heads": 2}}}, "use up to 64 letters"),
    ({"methods": [{"name": "scratch"}, {"name": "masa", "label": "M"}]}, r"methods\[1\]: masa extracts from a source"),
    ({"methods": [{"name": "scratch"}, {"name": "masa", "source": "olmo", "label": "A"},
                  {"name": "masa", "source": "olmo", "label": "B"}]}, r"methods\[2\] repeats methods\[1\]"),
    ({"methods": [{"name": "scratch", "label": "Scratch | new"}]}, r"methods\[0\].label: 'Scratch \| new' is a table cell"),
    ({"sources": {"olmo": {"label": "OL\nMo"}}}, r"sources.olmo.label: .* no `\|` or line break"),
])
def test_config_values_that_would_fail_late_fail_at_validation(diff, message):
    """A float where an integer goes, an over-long name, a source-less extraction and a repeated
    row pass JSON Schema (or its default types) and fail mid-run or render wrongly: refused here."""
    from harness.workflow.config import CONFIG_DIR
    from harness.io import read_yaml

    with pytest.raises(HarnessError, match=message):
        resolve(merge(read_yaml(CONFIG_DIR / "micro.yaml"), diff))


def test_data_dir_joins_every_task_file_path(tmp_path):
    """`data_dir` is the root of every relative data path: a file task's `train` and `test` too."""
    from harness.workflow.config import with_data_dir

    config = {"data_dir": str(tmp_path), "corpus": {"kind": "world"}, "tasks": {
        "boolq": {"kind": "file", "train": "boolq/train.jsonl", "test": "/abs/test.jsonl"},
        "piqa": {"kind": "file", "path": "piqa/valid.jsonl"}}}
    tasks = with_data_dir(config)["tasks"]
    assert tasks["boolq"] == {"kind": "file", "train": str(tmp_path / "boolq/train.jsonl"), "test": "/abs/test.jsonl"}
    assert tasks["piqa"]["path"] == str(tmp_path / "piqa/valid.jsonl")
