"""reports/signal.md (`signal:`): the benchmark's acceptance criteria on one shape
(docs/signal.md): the controls, the transfer rows named in `signal.transfer`, the sources they
come from, the untrained student, and every row's held-out loss curve."""

from harness.grid import NO_SOURCE, STRONG_CONTROLS, Grid, curve_dirs
from reports.plugin import Report


def _plan(grid: Grid):
    sig = grid.C["signal"]
    transfer = [r for r in grid.rows if r.label in sig["transfer"]]
    rows = [grid.reference, *grid.signal_controls.values(), *transfer]
    sources = list(dict.fromkeys([*sig["sources"], *(s for _, s, _ in grid.signal_controls.values()
                                                      if s != NO_SOURCE)]))
    return sig, transfer, rows, sources


def _power_rows(grid: Grid, rows) -> tuple[list, list]:
    """(rows A6/A7 measure a half-width on: the reference, the A/A row, the FFN ceiling and the
    transfer rows; the Oracle and the graded control, whose effects are tens of points)."""
    strong = {grid.signal_controls[role] for role in STRONG_CONTROLS}
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
                           controls={role: list(r) for role, r in grid.signal_controls.items()},
                           transfer=[list(r) for r in transfer], sources=grid.source_labels(sources),
                           world=_world(grid), heldout=grid.heldout_cfg(),
                           curves=_curves(grid),
                           generation=[[t, C["generation_tasks"][t]["label"], grid.task_data(t)] for t in grid.gen_tasks
                                       if C["generation_tasks"][t]["kind"] == "generated"])


SIGNAL = Report(
    name="signal", output="reports/signal.md", category="Benchmark signal", kind="table",
    renderer="reports.signal:render", enabled=lambda grid: "signal" in grid.C, inputs=inputs, cfg=cfg,
    # the world's and the generation tasks' data: the report reads the tasks' records itself
    # and the pre-trainings whose held-out loss curves A8/A9 read
    needs=lambda grid: [*filter(None, [_world(grid)]), *(grid.task_data(t) for t in grid.gen_tasks),
                        *curve_dirs(_curves(grid))])
