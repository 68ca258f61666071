"""The paired-differences block under every grid table: each row minus the reference row.

Rows of one table share seeds and test items, so each difference is taken per seed and
per item (`harness.analysis.stats`): the seed-paired t interval and the item x seed bootstrap
interval of the mean difference, per task and on the task average, and whether both
exclude 0 ("resolved"). Which row is the reference is the config's (`compare_to`).
"""

from __future__ import annotations

from collections import defaultdict

from harness.analysis.stats import Difference, item_matrix, paired_difference

# the `stage` of an evaluation record (records before it say none: SFT); "paraphrase": after SFT, on the
# held-out phrasing of the test items
SFT, ZEROSHOT, PARAPHRASE = "sft", "zeroshot", "paraphrase"
MARK = {1: "▲ yes", -1: "▼ yes", 0: "no"}


def stage_of(record: dict) -> str:
    return record.get("stage", SFT)


def _pct(level: float) -> str:
    return f"{100 * level:g}%"


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:+.2f}, {hi:+.2f}]"


def _task_cell(diff: Difference | None) -> str:
    if diff is None:
        return "–"
    text = f"{diff.mean:+.2f} {_interval(*diff.boot)}"
    return f"**{text}**" if diff.direction else text


def differences(cfg: dict, results: list[dict], stage: str = SFT):
    """{(shape, row label): ([per-task Difference or None], Difference of the average or None)} for
    every row but the reference; the average pairs the seeds that have every task in both rows."""
    st = cfg.get("statistics", {})
    opts = dict(level=st.get("level", 0.95), resamples=st.get("resamples", 10_000), seed=st.get("seed", 0))
    index: dict[tuple, dict[int, dict]] = defaultdict(dict)  # (method, source, shape, task) -> seed -> record
    for r in results:
        if stage_of(r) == stage:
            index[(r["method"], r["source"], r["shape_name"], r["task"])][r["seed"]] = r
    ref_method, ref_source, ref_label = cfg["reference"]
    tasks = [name for name, _ in cfg["tasks"]]
    out = {}
    for shape, _ in cfg["shapes"]:
        for method, source, label in cfg["rows"]:
            if (method, source) == (ref_method, ref_source):
                continue
            paired = [item_matrix(index[(method, source, shape, t)], index[(ref_method, ref_source, shape, t)],
                                  f"{label} − {ref_label} on {shape}, {t}") for t in tasks]
            per_task = [paired_difference([d], **opts) if seeds else None for seeds, d in paired]
            common = sorted(set.intersection(*(set(seeds) for seeds, _ in paired))) if paired else []
            avg = None
            if common:
                rows_of = [[seeds.index(s) for s in common] for seeds, _ in paired]
                avg = paired_difference([d[rows] for (_, d), rows in zip(paired, rows_of)], **opts)
            out[(shape, label)] = (per_task, avg)
    return out


def paired_table(cfg: dict, results: list[dict], stage: str = SFT) -> str:
    """Markdown: a row per (shape, non-reference row), Δ per task and on the average."""
    level = _pct(cfg.get("statistics", {}).get("level", 0.95))
    ref_label = cfg["reference"][2]
    head = ["Shape", "Method", *(label for _, label in cfg["tasks"]), "Avg. Δ", f"seed-paired t {level}",
            f"item × seed bootstrap {level}", "resolved"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    diffs = differences(cfg, results, stage)
    for shape, _ in cfg["shapes"]:
        first = True
        for _, _, label in cfg["rows"]:
            if (shape, label) not in diffs:
                continue
            per_task, avg = diffs[(shape, label)]
            tail = (["–"] * 4 if avg is None else
                    [f"{avg.mean:+.2f}", _interval(*avg.t_interval) if avg.t_interval else "– (one seed)",
                     _interval(*avg.boot), MARK[avg.direction]])
            lines.append("| " + " | ".join([shape if first else "", label, *map(_task_cell, per_task), *tail]) + " |")
            first = False
    legend = (f"Δ = row − {ref_label}, paired: the same seeds (same data order) and the same test items. "
              f"Task cells: Δ [item × seed bootstrap {level} interval], **bold** when resolved. "
              f"Resolved (▲ above, ▼ below): every interval excludes 0 — the seed-paired t interval over "
              f"seeds and the bootstrap that resamples seeds and test items together.\n\n")
    return legend + "\n".join(lines) + "\n"

