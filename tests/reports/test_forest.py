"""The forest plot's points are the paired differences: checked against each row's seed-paired
mean difference computed directly from the planted records."""

import json
import statistics

from harness.workflow.report import load_report
from reports.tables.forest import points
from tests.analysis.test_stats import TASKS, plant
from tests.reports.test_results import CFG


def test_the_forest_plot_shows_each_rows_paired_difference(tmp_path):
    files = plant(tmp_path, n_items=40, seeds=5)
    records = [json.loads(f.read_text()) for f in files]
    value = {(r["method"], r["seed"], r["task"]): r["value"] for r in records}

    def average(method, seed):
        return statistics.fmean(value[(method, seed, t)] for t in TASKS)

    found = {label: (mean, t, boot) for shape, label, mean, t, boot in points(CFG, records)}
    assert set(found) == {"Effect", "Null"}
    for method, label in (("effect", "Effect"), ("null", "Null")):
        want = statistics.fmean(average(method, s) - average("scratch", s) for s in range(5))
        mean, t, boot = found[label]
        assert abs(mean - want) < 1e-9 and t[0] < mean < t[1] and boot[0] < mean < boot[1]
    out = tmp_path / "forest.png"
    load_report("fig_forest_table1").render(CFG, files, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
