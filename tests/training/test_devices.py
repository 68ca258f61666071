"""GPU claims of jobs sharing a machine: each takes a device no other job holds."""

import subprocess
import sys

import pytest

from harness.training.devices import claim_device
from harness.errors import HarnessError


def test_jobs_claim_distinct_devices_and_a_released_one_is_reused(tmp_path):
    code = ("import sys, time; from harness.training.devices import claim_device; "
            "print(claim_device(3, sys.argv[1]), flush=True); time.sleep(float(sys.argv[2]))")
    holders = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "30"], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        claimed = [int(p.stdout.readline()) for p in holders]
        assert sorted(claimed) == [0, 1]
        assert claim_device(3, tmp_path) == 2  # this process takes the last one
        with pytest.raises(HarnessError, match="all 3 GPUs are held"):
            claim_device(3, tmp_path)
        holders[0].kill()
        holders[0].wait()
        assert claim_device(3, tmp_path) == claimed[0]  # a killed job's lock is gone with it
    finally:
        for p in holders:
            p.kill()
            p.wait()
