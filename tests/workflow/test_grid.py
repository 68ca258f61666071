"""The experiment grid (harness/workflow/grid.py) without Snakemake: paths, shared work and config slices."""

import json

import pytest

from harness.workflow.config import load_profile
from harness.workflow.grid import NO_SOURCE, Grid, Row
from harness.workflow.report import planned_methods


@pytest.fixture(scope="module")
def micro():
    return Grid(load_profile("micro"))


@pytest.fixture(scope="module")
def paper():
    return Grid(load_profile("paper"))


def test_rows_are_typed_and_in_config_order(micro):
    config = load_profile("micro")
    assert [r.method for r in micro.rows] == [r["name"] for r in config["methods"]]
    assert micro.rows[0] == Row("scratch", NO_SOURCE, "Scratch") == ("scratch", NO_SOURCE, "Scratch")
    assert micro.reference.label == config.get("compare_to", micro.rows[0].label)
    # every method some table runs, the PKT, ablation and signal rows included
    assert {"lora", "seeking", "masa-no-spectral", "oracle"} <= planned_methods(micro)


def test_a_method_that_only_adapts_fine_tunes_the_plain_students_checkpoint(micro):
    assert micro.pretrained("seeking", "olmo", "3L-0.4M", 2, "250k") == \
        "results/micro/students/scratch/none/3L-0.4M/seed2/250k/pretrain"
    assert micro.pretrained("masa", "olmo", "3L-0.4M", 2, "250k") == \
        "results/micro/students/masa/olmo/3L-0.4M/seed2/250k/pretrain"


def test_a_student_reads_the_artifact_only_of_a_method_that_extracts(micro):
    assert micro.init_inputs("masa", "olmo") == {"tokenizer": micro.TOKENIZER, "source": micro.source_dir("olmo"),
                                                 "artifact": "results/micro/artifacts/masa/olmo"}
    assert micro.init_inputs("distill", "olmo") == {"tokenizer": micro.TOKENIZER,
                                                    "source": micro.source_dir("olmo")}
    assert micro.init_inputs("scratch", NO_SOURCE) == {"tokenizer": micro.TOKENIZER}
    # prune-then-distill's students start from Pruning-EEP's search: one job, not two
    assert micro.init_inputs("prune-distill", "olmoe")["artifact"] == "results/micro/artifacts/pruning-eep/olmoe"


def test_generation_tasks_that_train_on_the_same_files_share_one_fine_tuning(paper):
    assert {t: paper.sft_task(t) for t in paper.gen_tasks} == {t: "dolly" for t in paper.gen_tasks}
    assert paper.sft_groups() is None  # a job per (student, task) on a cluster
    models = paper.generation_models("masa", "olmo", "12L-267M", 0, "5B")
    assert len(set(models)) == 1 and models[0].endswith("/5B/sft/dolly")


def test_micro_fine_tunes_a_students_tasks_in_one_job(micro):
    # micro's generation tasks each have their own train files: each its own fine-tuning, one job
    assert micro.sft_groups() == {"multiple_choice": micro.mc_tasks, "generation": micro.gen_tasks}


def test_slices_hold_what_their_stage_reads_and_nothing_of_other_methods():
    config = load_profile("micro")
    grid = Grid(config)
    pre = json.loads(grid.pretrain_cfg("masa", "3L-0.4M", "250k"))
    assert pre["shape"] == config["shapes"]["3L-0.4M"] and pre["seq_len"] == config["seq_len"]
    assert pre["budget"] == config["budgets"]["250k"]["tokens"] and pre["pretrain"] == config["pretrain"]
    config["method_options"]["distill"] = {"alpha": 0.9}  # another method's options...
    assert Grid(config).pretrain_cfg("masa", "3L-0.4M", "250k") == grid.pretrain_cfg("masa", "3L-0.4M", "250k")
    config["method_options"]["masa"] = {**config["method_options"].get("masa", {}), "ratio": 0.4}  # ...its own
    assert json.loads(Grid(config).pretrain_cfg("masa-no-spectral", "3L-0.4M", "250k"))["method_options"]["ratio"] == 0.4


def test_budgets_as_checkpoints_of_one_run_give_every_budget_the_largest_horizon():
    config = load_profile("micro")
    assert "horizon" not in json.loads(Grid(config).pretrain_cfg("masa", "3L-0.4M", "100k"))  # default: own runs
    config["pretrain"]["budgets"] = "checkpoints"
    for budget in config["budgets"]:
        pre = json.loads(Grid(config).pretrain_cfg("masa", "3L-0.4M", budget))
        assert pre["horizon"] == max(b["tokens"] for b in config["budgets"].values()) >= pre["budget"]


def test_sft_slices_of_a_no_sft_variant_and_of_a_source(paper):
    assert paper.sft_slice("laten-nosft", "boolq")["sft"]["epochs"] == 0
    assert paper.sft_slice("laten", "boolq")["sft"]["epochs"] == paper.C["sft"]["epochs"]
    source = paper.sft_slice(None, "boolq")["sft"]
    assert source["devices"] == paper.C["source_sft"]["devices"] and source["fsdp"] is True
    assert paper.sft_slice("scratch", "dolly")["task_kind"] == "generation"


def test_paths_of_files_benchmarks_and_resources(micro, paper):
    files = micro.eval_files(micro.rows[:2], ["3L-0.4M"], "250k", ["boolq", "piqa"], stage="zeroshot")
    assert len(files) == 2 * len(micro.C["seeds"]) * 2
    assert files[0] == "results/micro/students/scratch/none/3L-0.4M/seed0/250k/eval/zeroshot/boolq.json"
    assert micro.task_path("boolq") == "results/micro/data/world/tasks/boolq"
    assert paper.task_path("boolq") == paper.task_data("boolq") == "results/paper/data/tasks/boolq"
    assert micro.benchmark_of("pretrain", "logs/micro/students/a/b.log") == "benchmarks/micro/pretrain/students/a/b.tsv"
    assert paper.job_resources("report") == {**paper.C["resources"]["default"], **paper.C["resources"].get("report", {})}
    assert paper.job_resources("pretrain")["gpu"] == paper.C["pretrain"]["devices"] == 4  # data-parallel
