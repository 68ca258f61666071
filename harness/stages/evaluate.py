"""The evaluation stages: fine-tuned students, a pre-trained one zero-shot, an untrained one
and generation tasks, scored on their tasks' test splits; one JSON per task, with per-item
results and the config slice that made it (see `harness.stages.build` for the other stages)."""

from __future__ import annotations

from pathlib import Path

from harness.training.devices import compute_device
from harness.errors import HarnessError
from harness.io import atomic_write_json
from harness.training.runs import load_model
from harness.stages.build import build_student


def _checkpoint_dir(path: Path) -> Path:
    """A model directory, or the one a source directory's manifest points at."""
    from harness.models.sources import MANIFEST, Source

    return Path(Source.from_manifest(path).model_path) if (path / MANIFEST).is_file() else path


def evaluate(cfg: dict, model_dirs: list[Path], task_dirs: list[Path], outs: list[Path],
             pretrained: Path | None = None, zeroshot_outs: list[Path] = (), paraphrase_outs: list[Path] = (),
             model_label: str | None = None) -> None:
    """Score each task's fine-tuned student on that task's test split through lm-eval, and, given
    `pretrained`, the student before adaptation and SFT on every task too (zero-shot: `stage`
    "zeroshot" in its JSON, "sft" in the others).

    One process evaluates all tasks of a student: lm-eval and transformers take
    seconds to import, the evaluation itself about one."""
    from evals.multiple_choice import evaluate_multiple_choice
    from harness.data.tasks import Task

    if not len(model_dirs) == len(task_dirs) == len(outs) == len(cfg["tasks"]):
        raise HarnessError(f"eval: {len(cfg['tasks'])} tasks need as many --models, --tasks and --outs")
    if (pretrained is None) != (not zeroshot_outs) or (zeroshot_outs and len(zeroshot_outs) != len(outs)):
        raise HarnessError(f"eval: a zero-shot evaluation needs --pretrained and {len(outs)} --zeroshot-outs")
    model_dirs = [_checkpoint_dir(d) for d in model_dirs]
    pretrained = _checkpoint_dir(pretrained) if pretrained else None
    checkpoints = [("fine-tuned", d) for d in model_dirs] + ([("pre-trained", pretrained)] if pretrained else [])
    for kind, model_dir in checkpoints:
        if not (model_dir / "config.json").is_file():
            raise HarnessError(f"missing {kind} checkpoint {model_dir}")
    ids = {k: cfg[k] for k in ("method", "source", "shape_name", "budget_name", "seed") if k in cfg}
    # `stage` names what --models holds when it is not fine-tuned students (a source's "zeroshot")
    jobs = [(cfg.get("stage", "sft"), model_dirs, outs)]
    jobs += [("zeroshot", [pretrained] * len(outs), zeroshot_outs)] if pretrained else []
    if paraphrase_outs and len(paraphrase_outs) != len(outs):
        raise HarnessError(f"eval: {len(outs)} tasks need as many --paraphrase-outs")
    jobs += [("paraphrase", model_dirs, paraphrase_outs)] if paraphrase_outs else []
    for stage, dirs, files in jobs:
        split = "paraphrase" if stage == "paraphrase" else "test"
        for name, model_dir, task_dir, out in zip(cfg["tasks"], dirs, task_dirs, files):
            result = evaluate_multiple_choice(model_dir, Task(name, task_dir), cfg["eval"], split)
            atomic_write_json(out, {**result, **ids, "task": name, "stage": stage,
                                    "model": model_label or str(model_dir), "config": cfg})


def evaluate_untrained(cfg: dict, tokenizer_dir: Path, seed: int, task_dirs: list[Path], outs: list[Path],
                       source_dir: Path | None = None, artifact: Path | None = None) -> None:
    """The student before pre-training (`build_student`, from `cfg`) on every task: the floor an
    untrained model must sit at (reports/signal.md's A1)."""
    import tempfile

    model, tok = build_student(cfg, tokenizer_dir, seed, source_dir, artifact)
    with tempfile.TemporaryDirectory() as tmp:  # lm-eval loads the model from a directory
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        evaluate(cfg, [Path(tmp)] * len(outs), task_dirs, outs, model_label="untrained student (built in-process)")


def evaluate_generation(cfg: dict, model_dirs: list[Path], task_dirs: list[Path], outs: list[Path]) -> None:
    """Rouge-L of each generation task's fine-tuned student on that task's test split (MiniLLM's protocol)."""
    from evals.generation import GenerationConfig, evaluate_generation as run
    from harness.data.tasks import GENERATION, Task

    if not len(model_dirs) == len(task_dirs) == len(outs) == len(cfg["tasks"]):
        raise HarnessError(f"eval-generation: {len(cfg['tasks'])} tasks need as many --models, --tasks and --outs")
    gen = GenerationConfig.from_dict(cfg["generation"])
    for name, model_dir, task_dir, out in zip(cfg["tasks"], model_dirs, task_dirs, outs):
        model, tok = load_model(model_dir)
        result = run(model.to(compute_device()), tok, Task(name, task_dir, kind=GENERATION).records("test"), gen,
                     desc=f"eval {name}")
        ids = {k: cfg[k] for k in ("method", "source", "shape_name", "budget_name", "seed") if k in cfg}
        atomic_write_json(out, {**result, **ids, "task": name, "stage": "sft", "model": str(model_dir),
                                "config": cfg})
