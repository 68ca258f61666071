# Knowledge-inheritance harness: one DAG from sources to the paper's tables.
#
#   snakemake -j4 reports/table1.md                               # default `micro` profile
#   snakemake -j4 --configfile config/smoke.yaml reports/table1.md
#   snakemake -n --configfile config/paper.yaml reports/table1.md # plan the paper's grid
#
# Paths (R = results/<profile>):
#   R/data/world/                     generated corpus + task splits (micro profiles)
#   R/data/tokenizer/, R/data/tokens.npy
#   R/sources/{source}/               source LLM (pre-trained here, or a pointer to a checkpoint)
#   R/artifacts/{method}/{source}/    once-per-source extraction, reused by every student shape
#   R/students/{method}/{source}/{shape}/seed{seed}/{budget}/pretrain/   (the job builds the student first)
#   R/students/.../seed{seed}/{budget}/sft/{task}/
#   R/students/.../seed{seed}/{budget}/eval/{task}.json   (accuracy, or Rouge-L for generation tasks; per item too)
#   R/students/.../seed{seed}/{budget}/eval/zeroshot/{task}.json   (the pre-trained student, before SFT)
#   R/data/instructions/{task}/       a generation task's train/dev/test (MiniLLM format)
#   R/students/.../seed{seed}/init-eval/{task}.json   (the untrained student: reports/signal.md)
#   R/sources-sft/{source}/{task}/, R/sources-eval/{source}/{base|sft}/{task}.json   (Tables 2, PKT, signal)
# A method that only adapts before SFT (LoRA, Seeking, LaTen) fine-tunes Scratch's pre-trained student.
# {source} is `none` for methods run without a source (Scratch).

import os
import sys

# Plan with this checkout's `harness`, and run every job with it, wherever Snakemake was started and
# whichever checkout the environment installed: a job must run the code the run records.
sys.path.insert(0, workflow.basedir)
os.environ["PYTHONPATH"] = os.pathsep.join([workflow.basedir, *filter(None, [os.environ.get("PYTHONPATH")])])

configfile: workflow.basedir + "/config/micro.yaml"
report: "reports/workflow.rst"  # `snakemake --report results.html`: every table and figure on one page


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/sources.smk"
include: "rules/eval.smk"
include: "rules/students.smk"
include: "rules/reports.smk"

_unknown = sorted(set(C.get("resources", {})) - {r.name for r in workflow.rules} - {"default", "report"})
if _unknown:
    sys.exit(f"error: config error: resources: {_unknown[0]!r} is not a rule; rules: "
             + ", ".join(sorted(r.name for r in workflow.rules)))


localrules: all  # a target list: nothing to submit


# Jobs run here fork from one warm process instead of importing torch each (harness/workflow/forkserver.py);
# a cluster's jobs start on their nodes as before. Linux only by default: macOS's system libraries
# are not safe to use in a child forked without exec.
_fork_server = []


onstart:
    if C.get("fork_server", sys.platform == "linux") and workflow.local_exec and workflow.is_main_process:
        _fork_server.append(forkserver.start(G.log("fork_server")))


onsuccess:
    forkserver.stop(_fork_server.pop() if _fork_server else None)


onerror:
    forkserver.stop(_fork_server.pop() if _fork_server else None)


rule all:
    default_target: True
    input:
        all_targets(G),  # every report the profile asks for but `all_skips` (harness/workflow/report.py)
