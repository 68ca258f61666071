"""reports/signal.md (`signal:`): can this benchmark see knowledge transfer? The acceptance
criteria A1-A9 of docs/signal.md on one shape, each with its numbers and PASS / FAIL, from the
same evaluation JSON as the tables, the task files (for the knowledge-free floors) and every
row's held-out loss curve (A8, A9): the controls, the transfer rows named in `signal.transfer`,
the sources they come from and the untrained student.

A null result ("MASA does not beat Scratch") can only be read when the benchmark shows a
row that must win (the Oracle), a row that must not (the A/A twin of Scratch), nothing
scoring without knowledge, and intervals narrow enough for the effect in question.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from harness.analysis import floors
from harness.workflow.config import must_be_method, must_be_row_label, must_name
from harness.errors import HarnessError
from harness.workflow.grid import NO_SOURCE, Grid, Row, curve_dirs, labelled_rows
from harness.io import read_jsonl
from harness.workflow.report import Report, Section
from harness.analysis.stats import t_interval
from reports import loss_view as lv
from reports.paired import SFT, ZEROSHOT, differences, stage_of

UNTRAINED = "untrained"  # the `stage` of an initial student's evaluation (rule init_eval)
# docs/signal.md, in points
FLOOR_MARGIN = 3.0  # A1: knowledge-free strategies and the untrained student <= chance + 3
TEMPLATE_KNOWLEDGE = 3.0  # A1: the template baseline's knowledge score ("almost nothing")
SOURCE_MARGIN = 30.0  # A2: every source zero-shot >= chance + 30 on every task
SFT_KEEPS = 2.0  # A2: its SFT score >= its zero-shot - 2
SCRATCH_MARGIN, SCRATCH_BELOW = 8.0, 30.0  # A3: Scratch avg <= chance + 8 and >= 30 below every source
ORACLE_AVG, ORACLE_TASK = 20.0, 10.0  # A4
POWER = 1.0  # A6, A7: paired half-width on the average
LOSS_POWER = 1 / 3  # A9: a transfer row's loss-gap half-width at the budget <= this share of Oracle-FFN's gap


# the controls whose effect on Scratch is tens of points: they run on the profile's `seeds`,
# while the rows A6/A7 measure a half-width on run on `signal.seeds`
STRONG_CONTROLS = ("oracle", "graded")


def signal_controls(config: dict) -> dict[str, Row]:
    """{role: row} of the signal report's controls."""
    controls = config["signal"]["controls"]
    return dict(zip(controls, labelled_rows(config, list(controls.values()))))


def knowledge_map_rows(config: dict) -> list[Row]:
    """The knowledge map's rows (`signal.map`, reports/tables/knowledge_map.py): parts of the twin,
    each on Scratch's init."""
    return labelled_rows(config, config.get("signal", {}).get("map", []))


def _plan(grid: Grid):
    sig = grid.C["signal"]
    transfer = [r for r in grid.rows if r.label in sig["transfer"]]
    rows = [grid.reference, *signal_controls(grid.C).values(), *transfer]
    sources = list(dict.fromkeys([*sig["sources"], *(s for _, s, _ in signal_controls(grid.C).values()
                                                      if s != NO_SOURCE)]))
    return sig, transfer, rows, sources


def _power_rows(grid: Grid, rows) -> tuple[list, list]:
    """(rows A6/A7 measure a half-width on: the reference, the A/A row, the FFN ceiling and the
    transfer rows; the Oracle and the graded control, whose effects are tens of points)."""
    strong = {signal_controls(grid.C)[role] for role in STRONG_CONTROLS}
    return [r for r in rows if r not in strong], [r for r in rows if r in strong]


def _seeds(grid: Grid) -> list[int]:
    """The power rows' seeds: `signal.seeds` or the profile's."""
    return grid.C["signal"].get("seeds") or grid.C["seeds"]


def _curves(grid: Grid) -> list[list]:
    """Every row's held-out loss curve at the report budget (A8, A9: the loss view), each row on
    the seeds it runs."""
    sig, _, rows, _ = _plan(grid)
    power, strong = _power_rows(grid, rows)
    return [*grid.curves(power, [sig["shape"]], grid.budget, _seeds(grid)),
            *grid.curves(strong, [sig["shape"]], grid.budget, grid.C["seeds"])]


def inputs(grid: Grid) -> list[str]:
    sig, _, rows, sources = _plan(grid)
    ref, seeds = grid.reference, _seeds(grid)
    power, strong = _power_rows(grid, rows)
    untrained = [grid.student(ref.method, ref.source, sig["shape"], seed) + f"/init-eval/{t}.json"
                 for seed in seeds for t in grid.mc_tasks]
    evals = [f for rs, ss in ((power, seeds), (strong, None)) for stage in ("sft", "zeroshot")
             for f in grid.eval_files(rs, [sig["shape"]], grid.budget, grid.mc_tasks, stage=stage, seeds=ss)]
    return [*evals, *untrained, *grid.source_evals(sources, grid.mc_tasks)]


def _world(grid: Grid) -> str | None:
    """The generated world A1's floors are computed on; None on real text and tasks (A1 then
    does not apply: the floors need a world whose answers are balanced by construction)."""
    return grid.WORLD if grid.C["corpus"]["kind"] == "world" else None


def cfg(grid: Grid) -> str:
    sig, transfer, rows, sources = _plan(grid)
    C = grid.C
    return grid.report_cfg(rows, [sig["shape"]], grid.budget, seeds=_seeds(grid), control_seeds=C["seeds"],
                           shape=[sig["shape"], C["shapes"][sig["shape"]]],
                           controls={role: list(r) for role, r in signal_controls(grid.C).items()},
                           transfer=[list(r) for r in transfer], sources=grid.source_labels(sources),
                           world=_world(grid), heldout=grid.heldout_cfg(),
                           curves=_curves(grid),
                           generation=[[t, C["generation_tasks"][t]["label"], grid.task_data(t)] for t in grid.gen_tasks
                                       if C["generation_tasks"][t]["kind"] == "generated"])


SIGNAL = Report(
    name="signal", output="reports/signal.md", category="Benchmark signal", kind="table",
    renderer="reports.tables.signal:render", enabled=lambda grid: "signal" in grid.C, inputs=inputs, cfg=cfg,
    # the world's and the generation tasks' data: the report reads the tasks' records itself
    # and the pre-trainings whose held-out loss curves A8/A9 read
    needs=lambda grid: [*filter(None, [_world(grid)]), *(grid.task_data(t) for t in grid.gen_tasks),
                        *curve_dirs(_curves(grid))])


def _check(config: dict) -> None:
    sig = config["signal"]
    must_name(config, "signal.shape", "shape", sig["shape"], "shapes")
    for s in sig["sources"]:
        must_name(config, "signal.sources", "source", s, "sources")
    named = [*(f"controls.{role}" for role in sig["controls"]), *(f"map[{i}]" for i in range(len(sig.get("map", []))))]
    for where, row in zip(named, [*sig["controls"].values(), *sig.get("map", [])]):
        must_be_method(f"signal.{where}", row["name"])
        if "source" in row:
            must_name(config, f"signal.{where}", "source", row["source"], "sources")
    for label in sig["transfer"]:
        must_be_row_label(config, "signal.transfer", label)
    missing = sorted(set(config["seeds"]) - set(sig.get("seeds", config["seeds"])))
    if missing:  # the Oracle and the graded control run on `seeds` and pair with Scratch there
        raise HarnessError(f"config error: signal.seeds must include every seed of `seeds`; missing {missing}")


SIGNAL_SECTION = Section("signal", """
type: object
description: "reports/signal.md: can the benchmark see transfer? (docs/signal.md, A1-A9)"
additionalProperties: false
required: [shape, sources, controls, transfer]
properties:
  shape: {type: string, description: the one student shape the controls run on}
  seeds:
    type: array
    items: {type: integer, minimum: 0}
    minItems: 2
    uniqueItems: true
    description: >-
      the seeds of the rows A6/A7 measure (reference, A/A, FFN ceiling, transfer) and of the
      untrained student; must include the profile's `seeds`, on which the Oracle and the graded
      control run (STRONG_CONTROLS). Default: the profile's `seeds`
  sources: {type: array, items: {type: string}, description: "whose knowledge A2 checks (with the controls' twin)"}
  controls:
    type: object
    description: the controls, each a registered method and its source
    additionalProperties: false
    required: [oracle, graded, ffn, aa]
    properties:
      oracle: {$ref: "#/$defs/row", description: the twin copied whole}
      graded: {$ref: "#/$defs/row", description: every weight of the twin but its FFNs}
      ffn: {$ref: "#/$defs/row", description: "the twin's FFNs only: the FFN-only transfer ceiling"}
      aa: {$ref: "#/$defs/row", description: Scratch with another init stream}
  transfer: {type: array, minItems: 1, items: {type: string}, description: "labels of `methods` rows (A7, A9)"}
  map:
    type: array
    minItems: 1
    items: {$ref: "#/$defs/row"}
    description: >-
      reports/knowledge_map.md: where the twin's transferable knowledge lives, one part at a time
      on Scratch's init (baselines/oracle.py), in the accuracy and the loss view
""", check=_check, rows=lambda config: [*signal_controls(config).values(), *knowledge_map_rows(config)])


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "**PASS**" if ok else "**FAIL**"


def _mean(values) -> float:
    return statistics.fmean(values)


def _half(diff) -> float:
    """The wider half-width of a difference's two intervals (t over seeds, item x seed bootstrap)."""
    boot = (diff.boot[1] - diff.boot[0]) / 2
    return max(boot, diff.t_half or 0.0)


def _ci(diff) -> str:
    t = f"t [{diff.mean - diff.t_half:+.2f}, {diff.mean + diff.t_half:+.2f}]" if diff.t_half is not None else "t –"
    return f"{diff.mean:+.2f} ({t}; bootstrap [{diff.boot[0]:+.2f}, {diff.boot[1]:+.2f}]; {diff.seeds} seeds)"


def _seed_list(seeds: list[int]) -> str:
    """`0–29` for a run of consecutive seeds, else the list."""
    s = sorted(seeds)
    if len(s) > 2 and s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}–{s[-1]}"
    return ", ".join(map(str, s))


class _Index:
    """Evaluation records by (method, source, stage, task) -> seed -> record."""

    def __init__(self, results: list[dict]):
        self.by = defaultdict(dict)
        for r in results:
            self.by[(r["method"], r["source"], stage_of(r), r["task"])][r["seed"]] = r

    def values(self, method: str, source: str, stage: str, task: str) -> list[float]:
        return [r["value"] for _, r in sorted(self.by[(method, source, stage, task)].items())]

    def n_choices(self, task: str) -> int:
        for (_, _, _, t), per_seed in self.by.items():
            for r in per_seed.values():
                if t == task and r.get("items"):
                    return len(r["items"][0]["logliks"])
        raise KeyError(task)


def _floors_section(cfg: dict, index: _Index, tasks: list[tuple[str, str]], chance: dict[str, float],
                    scratch: tuple[str, str]) -> tuple[list[str], bool]:
    world = Path(cfg["world"])
    corpus = (world / "corpus.txt").read_text(encoding="utf-8")
    lines = ["| Task | chance | best knowledge-free strategy | untrained student | limit | |", "|---|---|---|---|---|---|"]
    ok_all = True
    for name, label in tasks:
        split = {s: read_jsonl(world / "tasks" / name / f"{s}.jsonl", f"task {name}") for s in ("train", "test")}
        scores = floors.multiple_choice(split["train"], split["test"], corpus)
        best = max(scores, key=scores.get)
        untrained = index.values(*scratch, UNTRAINED, name)
        limit = chance[name] + FLOOR_MARGIN
        # the untrained student's floor is its mean over seeds: one random init's yes/no lean moves a
        # 208-item score by ~3.5 points (binomial SD) either way; the max is printed beside it
        worst = max([scores[best], *([_mean(untrained)] if untrained else [])])
        ok = worst <= limit
        ok_all &= ok
        u = f"{_mean(untrained):.1f} (max {max(untrained):.1f})" if untrained else "–"
        lines.append(f"| {label} | {chance[name]:.1f} | {scores[best]:.1f} ({best}) | {u} | ≤ {limit:.1f} | "
                     f"{_verdict(ok)} |")
    gen = cfg.get("generation", [])
    if gen:
        lines += ["", "Generation sets: the template baseline (each test instruction answered with the train "
                  "response of its pattern, the entity swapped in).", "",
                  "| Task | template Rouge-L | template knowledge score | limit | |", "|---|---|---|---|---|"]
        for name, label, directory in gen:
            split = {s: read_jsonl(Path(directory) / f"{s}.jsonl", f"generation task {name}")
                     for s in ("train", "test")}
            if not all("facts" in r for r in split["test"]):
                lines.append(f"| {label} | – | – (no `facts` in its records) | – | – |")
                continue
            score = floors.generation(split["train"], split["test"])
            ok = score["knowledge"] <= TEMPLATE_KNOWLEDGE
            ok_all &= ok
            lines.append(f"| {label} | {score['rougeL']:.1f} | {score['knowledge']:.1f} | ≤ {TEMPLATE_KNOWLEDGE:.0f} "
                         f"| {_verdict(ok)} |")
    return lines, ok_all


@dataclass
class _View:
    """What every criterion's section reads: the records, the tasks and their chance levels, the
    reference row, the controls by role, the transfer rows and their paired differences."""

    cfg: dict
    results: list[dict]
    index: _Index
    tasks: list[tuple[str, str]]
    chance: dict[str, float]
    ref: tuple
    roles: dict[str, tuple]
    transfer: list[tuple]
    diff_cfg: dict
    diffs: dict

    def row_diff(self, role: str):
        """(per-task differences, the average's) of a control's row − the reference."""
        return self.diffs.get(self.roles[role][2], (None, None)) if role in self.roles else (None, None)


def _view(cfg: dict, results: list[dict]) -> _View:
    index = _Index(results)
    tasks = [tuple(t) for t in cfg["tasks"]]
    ref = tuple(cfg["reference"])
    roles = {role: tuple(row) for role, row in cfg["controls"].items()}
    transfer = [tuple(r) for r in cfg["transfer"]]
    diff_cfg = {**cfg, "shapes": [cfg["shape"]], "rows": [list(ref), *map(list, roles.values()), *map(list, transfer)]}
    diffs = {label: d for (_, label), d in differences(diff_cfg, results, SFT).items()}
    return _View(cfg, results, index, tasks, {name: 100.0 / index.n_choices(name) for name, _ in tasks}, ref, roles,
                 transfer, diff_cfg, diffs)


Section = tuple[list[str], list[tuple[str, str, bool | None]]]  # (Markdown lines, verdicts)


def render(cfg: dict, results: list[dict]) -> str:
    """The summary of every criterion's verdict, then each criterion's section with its numbers."""
    v = _view(cfg, results)
    seeds = _seed_list(cfg["seeds"])
    control_seeds = cfg.get("control_seeds", cfg["seeds"])
    if sorted(control_seeds) != sorted(cfg["seeds"]):  # the strong controls need fewer seeds than A6/A7
        strong = ", ".join(v.roles[r][2] for r in STRONG_CONTROLS if r in v.roles)
        seeds += f" ({strong}: seeds {_seed_list(control_seeds)})"
    out = [f"Profile `{cfg['profile']}` · student `{cfg['shape'][0]}` · budget `{cfg['budget']}` = "
           f"{cfg['budget_tokens']:,} tokens · seeds {seeds} · rendered {_dt.date.today().isoformat()}.", "",
           "Criteria of docs/signal.md. Scores are accuracy in points on each task's test split after SFT "
           "unless marked zero-shot; differences are paired by seed and by test item "
           "(`reports/paired.py`), 95% intervals.", ""]
    verdicts: list[tuple[str, str, bool | None]] = []
    sources_lines, sources_verdicts, source_avgs = _a2_sources(v)
    sections = [_a1_floors(v), (sources_lines, sources_verdicts), _a3_scratch(v, source_avgs), _a4_a6_controls(v),
                _a7_power(v)]
    if cfg.get("curves"):
        sections.append(_loss_section(cfg, v.ref, v.roles, v.transfer))
    for lines, found in sections:
        out += lines
        verdicts += found
    summary = ["| | criterion | |", "|---|---|---|"] + [f"| {k} | {text} | {_verdict(ok)} |" for k, text, ok in verdicts]
    return "\n".join(["# Can this benchmark see knowledge transfer?", "", *out[:4], *summary, "", *out[4:]])


def _a1_floors(v: _View) -> Section:
    a1 = (f"nothing but knowledge scores: every knowledge-free strategy and the untrained student ≤ chance + "
          f"{FLOOR_MARGIN:.0f} on every task")
    if not v.cfg.get("world"):  # real tasks: no generated world to compute the knowledge-free strategies on
        return [], [("A1", a1 + " (computed on the generated world only: not applicable here)", None)]
    lines, ok = _floors_section(v.cfg, v.index, v.tasks, v.chance, v.ref[:2])
    return ["## A1 Floors", "", *lines, ""], [("A1", a1, ok)]


def _a2_sources(v: _View) -> tuple[list[str], list, dict[str, float]]:
    tasks, chance = v.tasks, v.chance
    lines = ["| Source | " + " | ".join(label for _, label in tasks) + " | Avg. |", "|" + "---|" * (len(tasks) + 2)]
    ok_know, ok_keep, source_avgs = True, True, {}
    for name, label in v.cfg["sources"]:
        zs = {t: _mean(v.index.values("source", name, ZEROSHOT, t) or [float("nan")]) for t, _ in tasks}
        ft = {t: _mean(v.index.values("source-sft", name, SFT, t) or [float("nan")]) for t, _ in tasks}
        source_avgs[label] = _mean(zs.values())
        ok_know &= all(zs[t] >= chance[t] + SOURCE_MARGIN for t, _ in tasks)
        ok_keep &= all(ft[t] >= zs[t] - SFT_KEEPS for t, _ in tasks)
        lines.append(f"| {label} zero-shot | " + " | ".join(f"{zs[t]:.1f}" for t, _ in tasks)
                     + f" | {source_avgs[label]:.1f} |")
        lines.append(f"| {label} after SFT | " + " | ".join(f"{ft[t]:.1f}" for t, _ in tasks)
                     + f" | {_mean(ft.values()):.1f} |")
    lines.append("| chance + 30 | " + " | ".join(f"{chance[t] + SOURCE_MARGIN:.1f}" for t, _ in tasks) + " | |")
    verdict = ("A2", f"the sources know: zero-shot ≥ chance + {SOURCE_MARGIN:.0f} on every task, and SFT "
                     f"keeps it (≥ zero-shot − {SFT_KEEPS:.0f})", ok_know and ok_keep)
    return (["## A2 Sources know", "", *lines, "",
             f"Zero-shot ≥ chance + {SOURCE_MARGIN:.0f} everywhere: {_verdict(ok_know)}. "
             f"SFT ≥ zero-shot − {SFT_KEEPS:.0f} everywhere: {_verdict(ok_keep)}.", ""], [verdict], source_avgs)


def _a3_scratch(v: _View, source_avgs: dict[str, float]) -> Section:
    ref, chance_avg = v.ref, _mean(v.chance.values())
    per_seed = [_mean(vals) for vals in zip(*(v.index.values(*ref[:2], SFT, t) for t, _ in v.tasks))]
    scratch_avg, scratch_half = t_interval(per_seed) if per_seed else (float("nan"), None)
    ok = scratch_avg <= chance_avg + SCRATCH_MARGIN and all(
        scratch_avg <= a - SCRATCH_BELOW for a in source_avgs.values())
    verdict = ("A3", f"{ref[2]} does not know: average ≤ chance + {SCRATCH_MARGIN:.0f} and ≥ "
                     f"{SCRATCH_BELOW:.0f} below every source", ok)
    return (["## A3 Students don't", "",
             f"{ref[2]} average {scratch_avg:.2f}" + (f" ± {scratch_half:.2f}" if scratch_half else "")
             + f"; chance average {chance_avg:.2f} (limit {chance_avg + SCRATCH_MARGIN:.2f}); source averages "
             + ", ".join(f"{k} {a:.1f}" for k, a in source_avgs.items()) + f". {_verdict(ok)}", ""], [verdict])


def _a4_a6_controls(v: _View) -> Section:
    """A4 the Oracle, A5 the graded control, A6 the A/A row."""
    ref, roles, out, verdicts = v.ref, v.roles, [], []
    oracle_tasks, oracle = v.row_diff("oracle")
    if oracle:
        ok_avg = oracle.mean >= ORACLE_AVG and oracle.direction == 1
        ok_task = all(d is not None and d.mean >= ORACLE_TASK and d.boot[0] > 0 for d in oracle_tasks)
        verdicts.append(("A4", f"the Oracle is seen: Δ ≥ +{ORACLE_AVG:.0f} on the average and ≥ +{ORACLE_TASK:.0f} "
                               f"on every task, intervals excluding 0", ok_avg and ok_task))
        cells = " · ".join(f"{label} {d.mean:+.1f} [{d.boot[0]:+.1f}, {d.boot[1]:+.1f}]"
                           for (_, label), d in zip(v.tasks, oracle_tasks) if d)
        out += ["## A4 Positive control", "", f"{roles['oracle'][2]} − {ref[2]}: average {_ci(oracle)}.", "",
                f"Per task: {cells}.", "", f"Average: {_verdict(ok_avg)}; every task: {_verdict(ok_task)}.", ""]
    _, graded = v.row_diff("graded")
    if graded and oracle:
        vs_oracle = differences({**v.diff_cfg, "reference": list(roles["oracle"]), "rows": [list(roles["graded"])]},
                                v.results, SFT)[(v.cfg["shape"][0], roles["graded"][2])][1]
        ok = graded.direction == 1 and vs_oracle is not None and vs_oracle.direction == -1
        verdicts.append(("A5", "the graded control lies strictly between Scratch and the Oracle", ok))
        out += ["## A5 Graded control", "", f"{roles['graded'][2]} − {ref[2]}: {_ci(graded)}.", "",
                f"{roles['graded'][2]} − {roles['oracle'][2]}: {_ci(vs_oracle)}. {_verdict(ok)}", ""]
    _, aa = v.row_diff("aa")
    if aa:
        ok = aa.direction == 0 and _half(aa) <= POWER
        verdicts.append(("A6", f"the A/A row is null: interval contains 0, half-width ≤ {POWER:.1f}", ok))
        out += ["## A6 A/A", "", f"{roles['aa'][2]} − {ref[2]}: {_ci(aa)}; half-width {_half(aa):.2f}. "
                + _verdict(ok), ""]
    return out, verdicts


def _a7_power(v: _View) -> Section:
    ref = v.ref
    _, ffn = v.row_diff("ffn")
    lines = ["| Row | Δ vs " + ref[2] + " (t; bootstrap) | half-width | |", "|---|---|---|---|"]
    ok_all = bool(v.transfer)
    for _, _, label in v.transfer:
        _, d = v.diffs.get(label, (None, None))
        if d is None:
            lines.append(f"| {label} | – | – | **FAIL** |")
            ok_all = False
            continue
        ok = _half(d) <= POWER
        ok_all &= ok
        lines.append(f"| {label} | {_ci(d)} | {_half(d):.2f} | {_verdict(ok)} |")
    if ffn:
        lines.append(f"| {v.roles['ffn'][2]} (the FFN-only ceiling) | {_ci(ffn)} | {_half(ffn):.2f} | |")
    verdict = ("A7", f"power: the paired half-width of each transfer row − {ref[2]} ≤ {POWER:.1f}", ok_all)
    return (["## A7 Power, and the transfer rows", "", *lines, "",
             "A row whose interval lies above 0 beats Scratch; one whose interval contains 0 does not, at a "
             f"resolution of ±{POWER:.1f} point when A7 passes. Compare it with the FFN-only ceiling: the most "
             "that copying a knowing twin's exact FFN weights gives.", ""], [verdict])


def _loss_section(cfg: dict, ref: tuple, roles: dict[str, tuple], transfer: list[tuple]
                  ) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """A8, A9: the held-out loss view, where FFN-only transfer is seen at this scale when the
    accuracy view cannot see it (docs/signal.md, "The loss view")."""
    shape = cfg["shape"][0]
    curves = lv.load_curves(cfg)
    reference = curves[(*ref[:2], shape)]
    rows = [*(roles[role] for role in ("ffn", "graded", "oracle", "aa") if role in roles), *transfer]
    rows = [r for r in rows if curves.get((*r[:2], shape))]
    views = {r[2]: lv.row_view(curves[(*r[:2], shape)], reference) for r in rows}
    ends = {label: v.end for label, v in views.items()}
    gaps = {label: v.gap for label, v in views.items()}
    verdicts = []
    lines = ["## A8 The loss view: the FFN-only ceiling seen", "",
             f"Held-out LM loss (nats) of each row minus {ref[2]}'s, same seed (same data order, same held-out "
             f"windows): at the budget with a 95% t interval over seeds (▼ resolved lower), the data factor "
             f"(budget / tokens the row needs to reach {ref[2]}'s final loss, each seed; t interval), and the "
             f"head start: the last token count at which the gap's simultaneous band (below) lies under 0, and each "
             f"seed's own zero crossing.", "",
             "| Row | seeds | Δ loss at budget | data factor | head start |", "|---|---|---|---|---|"]
    for label, v in views.items():
        lines.append(f"| {label} | {len(v.end.gaps)} | " + " | ".join(v.cells()) + " |")
    ffn = ends.get(roles["ffn"][2]) if "ffn" in roles else None
    if ffn is not None:
        factor = ffn.factor_interval()
        ok_gap = ffn.direction == -1
        ok_factor = factor is not None and factor[1] is not None and factor[0] - factor[1] > 1
        verdicts.append(("A8", f"the loss view sees FFN-only transfer: {roles['ffn'][2]}'s loss gap at the budget "
                               f"resolved below {ref[2]}, its data factor's interval above 1", ok_gap and ok_factor))
        lines += ["", f"{roles['ffn'][2]}: gap resolved below {_verdict(ok_gap)}; data factor above 1 "
                      f"{_verdict(ok_factor)}."]
    points = len(next(iter(gaps.values())).tokens) if gaps else 0
    lines += ["", f"The gap along pre-training: mean [simultaneous 95% band over the curve's {points} token counts: "
                  f"Student-t at level 1 − 0.05/{points} per point, Bonferroni], ▼ / ▲ where the band excludes 0.", "",
              *lv.gap_table(gaps), ""]
    if ffn is None or not transfer:
        return lines, verdicts
    target = abs(ffn.mean) * LOSS_POWER
    table = [f"| Row | Δ loss at budget | half-width | ≤ ⅓ of {roles['ffn'][2]}'s gap ({target:.3f}) | "
             "seeds this needs at the measured spread |", "|---|---|---|---|---|"]
    ok_all = ffn.direction == -1
    for _, _, label in transfer:
        e = ends.get(label)
        if e is None or e.half is None:
            table.append(f"| {label} | – | – | **FAIL** | – |")
            ok_all = False
            continue
        ok = e.half <= target
        ok_all &= ok
        need = lv.seeds_needed(lv.spread(e.gaps), target)
        table.append(f"| {label} | {lv.fmt_interval(e.mean, e.half)} | {e.half:.3f} | {_verdict(ok)} | "
                     f"{need if need is not None else '> 10,000'} (now {len(e.gaps)}) |")
    verdicts.append(("A9", f"loss-view power: each transfer row's loss-gap half-width at the budget ≤ ⅓ of "
                           f"{roles['ffn'][2]}'s gap (resolved below)", ok_all))
    lines += ["## A9 Loss-view power", "", *table, "",
              "A row that captures a third of the FFN-only ceiling is resolved when A9 passes."
              + ("" if ffn.direction == -1 else " " + f"{roles['ffn'][2]}'s gap is not resolved, so there is no ceiling "
                                                   "to measure the power against: **FAIL**."), ""]
    return lines, verdicts
