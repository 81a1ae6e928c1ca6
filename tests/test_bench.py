"""`make bench` stays runnable: a quick run on the test cluster writes valid numbers."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.cluster


def test_bench_quick_run_writes_valid_json(cluster, tmp_path):
    done = subprocess.run([sys.executable, "bench/bench.py", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          env=cluster.env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["ready"]["warm_seconds"]["median"] > 0
    for key in ("slurm_1_seconds", "slurm_4_seconds", "local_1_seconds", "local_4_seconds"):
        figure = results["startup"][key]
        assert 0 < figure["min"] <= figure["median"] <= figure["max"]
    for n in (1, 2, 4):
        row = results["study"][f"{n}_workers"]
        assert row["slurm_over_local"] > 0 and row["limit"] >= 1
    assert {"submit_seconds", "wait_for_workers_seconds", "compute_seconds", "teardown_seconds"} <= set(
        results["end_to_end"])
    assert results["sizes"]["dask-slurm-lab/slurm:0.1.0"] > 0
    assert results["memory"]["idle_cluster_mib"] > 0 and results["memory"]["one_worker_mib"]["worker"] > 0
    assert "| warm `make up` to ready (s) |" in (tmp_path / "results.md").read_text()
    assert cluster.queue() == []
