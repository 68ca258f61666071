"""The paper profile takes nothing from the default silently: every key it inherits from
config/micro.yaml is listed here with the reason it is right for the paper's grid, and a key
added to micro.yaml that the paper would inherit fails this test until someone chooses."""

from harness.io import read_yaml
from harness.workflow.config import CONFIG_DIR, drop_nulls, merge

# key (dotted) -> why the paper runs with micro's value
CHOSEN = {
    **{f"sources.{s}.{k}": "names and adapters of the same three architectures" for s in ("olmo", "olmoe", "deepseek")
       for k in ("label", "arch")},
    **{f"source_training.{k}": "unused: every paper source is a checkpoint (`model_path`); validation asks for it"
       for k in ("seed", "seq_len", "batch_size", "checkpoint_every", "optim.lr", "optim.weight_decay",
                 "optim.warmup")},
    "compare_to": "Scratch, the paper's reference row",
    **{f"statistics.{k}": "how intervals are computed does not depend on the grid" for k in ("level", "resamples",
                                                                                            "seed")},
    "ablation.table4": "Table 4's rows: the same three MASA variants",
    **{f"pkt.{k}": "the PKT table's tasks and rows are micro's (config/paper.yaml says so)"
       for k in ("tasks", "compare_to", "also_compare_to", "rows")},
    "table2.method": "MASA",
    **{f"resources.{rule}.{k}": "a report and a checkpoint source's resolution need no more on a cluster"
       for rule in ("source", "report") for k in ("mem_mb", "runtime")},
}


def _leaves(config, path=""):
    if isinstance(config, dict) and config:
        for key, value in config.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    else:
        yield path


def _set_by(diff: dict, path: str) -> bool:
    """Whether the diff sets the key (or replaces a mapping or list above it)."""
    for key in path.split("."):
        if not isinstance(diff, dict) or key not in diff:
            return False
        diff = diff[key]
        if not isinstance(diff, dict):
            return True
    return True


def test_the_paper_profile_inherits_only_what_was_chosen():
    micro, paper = read_yaml(CONFIG_DIR / "micro.yaml"), read_yaml(CONFIG_DIR / "paper.yaml")
    inherited = {path for path in _leaves(drop_nulls(merge(micro, paper))) if not _set_by(paper, path)}
    assert not inherited - set(CHOSEN), f"the paper profile inherits these from micro.yaml unchosen: " \
                                        f"{sorted(inherited - set(CHOSEN))}"
    assert not set(CHOSEN) - inherited, f"listed but set by paper.yaml now: {sorted(set(CHOSEN) - inherited)}"


def test_the_paper_profile_runs_the_authors_eep_search_and_checkpoints_its_fine_tuning():
    from harness.workflow.config import load_profile

    paper = load_profile("paper")
    eep = paper["method_options"]["pruning-eep"]
    assert (eep["population"], eep["prune_archive"], eep["merge_archive"], eep["dev_top"]) == (31, 100, 400, 20)
    assert paper["sft"]["checkpoint_every"] > 0 and paper["sft_generation"]["checkpoint_every"] > 0


def test_the_paper_plan_fits_every_estimated_job_and_names_one_that_does_not():
    """`python -m harness plan --profile paper` passes: pre-training (its `micro_batch: auto` chosen),
    SFT, MASA's extractions, generation evaluation and the sources' fine-tuning all fit 80 GB and
    their runtimes; a shorter extraction runtime or a smaller GPU is named, job by job."""
    from harness.workflow.config import load_profile, merge, resolve
    from harness.workflow.plan import all_estimates, problems

    paper = load_profile("paper")
    assert problems(paper) == []
    rules = {e.rule for e in all_estimates(paper)}
    assert rules == {"pretrain", "sft", "extract", "eval_generation", "source_sft"}
    assert 1 <= paper["pretrain"]["micro_batch"] < paper["pretrain"]["batch_size"]

    raw = merge(read_yaml(CONFIG_DIR / "micro.yaml"), read_yaml(CONFIG_DIR / "paper.yaml"))
    short = resolve(merge(raw, {"resources": {"extract": {"runtime": 600}}}))
    assert any(p.startswith("extract masa from olmo") and "runtime is 10 h" in p for p in problems(short))
    small = resolve(merge(raw, {"plan": {"gpu_memory_gb": 40}}))
    assert any(p.startswith("extract masa-ratio40 from olmo") and "GiB of GPU memory" in p for p in problems(small))
    assert small["pretrain"]["micro_batch"] < paper["pretrain"]["micro_batch"]  # auto follows the GPU
