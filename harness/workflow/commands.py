"""What the Snakemake rules share that is plain Python: the shell command every rule runs.

Kept out of `rules/*.smk` so that it is unit-tested without Snakemake.
"""

from __future__ import annotations

import re

THEN = "::"  # between the stages one `python -m harness` command runs in turn

# Every placeholder that expands to a path or a config-derived word.
PATH_PLACEHOLDER = re.compile(r"\{((?:input|output|log|params|wildcards)(?:\.\w+)?)\}")


def quote_placeholders(command: str) -> str:
    """Every `{input...}`, `{output...}`, `{log}`, `{params...}` and `{wildcards...}` of a Snakemake
    shell command as `{...:q}`, which Snakemake expands to shell-quoted words (each element of a
    list its own word): a path reaches the command as data, whatever it holds. Names are checked
    at config time too (`harness.workflow.config.check_names`); this is the second fence."""
    return PATH_PLACEHOLDER.sub(r"{\1:q}", command)


# The interpreter a job runs, named through the environment rather than written into the command:
# Snakemake reruns every job whose rule's command text changed ("Code has changed since last
# execution"), so a command holding `sys.executable` would rebuild every output when the same
# checkout is run from another venv. The Snakefile sets it to the interpreter running Snakemake
# (on a cluster node too, where the job's Snakemake parses the Snakefile again); `python` on PATH
# is the fallback for a command copied out of `--printshellcmds`.
PYTHON_ENV = "HARNESS_PYTHON"
PYTHON = '"${{' + PYTHON_ENV + ':-python}}"'  # braces doubled: Snakemake formats the command


def stage_command(stage: str, *args: str, then: tuple[tuple[str, ...], ...] = ()) -> str:
    """The shell command of one CLI stage (`python -m harness <stage> --cfg {params.cfg} ...`) and,
    in the same process, each stage of `then`: `(stage, the params key of its --cfg, *args)`.
    Its output goes to the rule's log; on failure the log's last line (the stage's one-line
    error) is echoed to the terminal."""
    stages = [f"{stage} --cfg {{params.cfg}} " + " ".join(args)]
    stages += [f"{name} --cfg {{params.{cfg}}} " + " ".join(more) for name, cfg, *more in then]
    return quote_placeholders(f"{PYTHON} -m harness --threads {{threads}} " + f" {THEN} ".join(stages)
                              + " > {log} 2>&1 || {{ tail -n 1 {log} >&2; exit 1; }}")
