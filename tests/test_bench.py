"""`make bench` stays runnable, and safe: a quick run builds a cluster of its
own beside the test cluster, writes valid numbers, and leaves the test
cluster (containers, home, results) and every volume but its own alone."""

import json
import subprocess
import sys

import pytest

from tools.cluster import IMAGE_NAMES, ROOT, image

pytestmark = pytest.mark.cluster


def volumes() -> set[str]:
    return set(subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                              check=True).stdout.split())


def test_bench_quick_run_writes_valid_json_and_touches_nothing_else(cluster, tmp_path):
    cluster.out("echo mine > ~/bench-marker")
    (cluster.results / "bench-marker").write_text("mine")
    containers = cluster.compose("ps", "-q").stdout.split()
    before = volumes()
    done = subprocess.run([sys.executable, "-m", "bench.bench", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          env=cluster.env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The test cluster and its data are as they were; the bench's own cluster is gone.
    assert cluster.compose("ps", "-q").stdout.split() == containers
    assert cluster.out("cat ~/bench-marker").strip() == "mine"
    assert (cluster.results / "bench-marker").read_text() == "mine"
    (cluster.results / "bench-marker").unlink()
    assert volumes() == before
    assert not [v for v in volumes() if v.startswith("dask-slurm-lab-bench_")]

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True and results["repeat"] == 1
    assert 0 < results["ready"]["warm_seconds"]["median"] < 300
    for key in ("slurm_1_seconds", "slurm_4_seconds", "local_1_seconds", "local_4_seconds"):
        figure = results["startup"][key]
        assert figure["n"] == 1 and 0 < figure["median"] < 120
    for n in (1, 2, 4):
        row = results["study"][f"{n}_workers"]
        assert row["slurm_over_local"] > 0 and row["limit"] == min(n, 4, 2)
    # Every scheduler's speedup at 2 workers, as a figure with its range.
    assert set(results["schedulers"]) == {"threads", "processes", "local", "slurm"}
    assert all(f["n"] == 1 and f["median"] > 0 for f in results["schedulers"].values())
    assert "| processes | " in (tmp_path / "results.md").read_text()
    end = results["end_to_end"]
    assert {"submit_seconds", "wait_for_workers_seconds", "compute_seconds", "teardown_seconds"} <= set(end)
    # The phases are of the same run that was timed: they fit inside it.
    assert end["compute_seconds"]["median"] + end["wait_for_workers_seconds"]["median"] \
        < end["make_run_seconds"]["median"]
    assert all(results["sizes"][image(name)] > 0 for name in IMAGE_NAMES)
    memory = results["memory"]
    assert 50 < memory["idle_cluster_mib"]["median"] < 4096 and memory["worker_mib"]["median"] > 20
    assert 0 < results["idle_cpu"]["busy_share"]["median"] < 1
    assert "| warm `make up` to ready (s) |" in (tmp_path / "results.md").read_text()
    # Where warm `make up` went: init ended before any other service started; each Slurm role
    # started after the one compose starts it after; each was done starting after it started
    # and after the one whose port it waits for, and all of it before make up returned.
    chain = results["ready"]["chain"]
    assert list(chain) == ["init", "db", "slurmdbd", "slurmctld", "compute", "login"]
    started = {name: chain[name]["started"]["median"] for name in chain}
    done = {name: chain[name]["ready"]["median"] for name in chain}
    assert done["init"] <= min(started[name] for name in chain if name != "init")
    assert started["db"] <= started["slurmdbd"] <= started["slurmctld"] <= started["login"] <= started["compute"]
    assert all(started[name] <= done[name] for name in chain)
    assert done["db"] <= done["slurmdbd"] <= done["slurmctld"] <= min(done["compute"], done["login"])
    assert 0 < max(done.values()) <= results["ready"]["warm_seconds"]["median"]
    # A worker job's python: the interpreter, then importing dask's worker, which takes longer.
    start = results["worker_start"]
    assert 0 < start["interpreter_seconds"]["median"] < start["worker_imports_seconds"]["median"] < 30
    # Every target's figure, with its range, and a verdict where the target is a bound.
    figures = {row["figure"]: row for row in results["targets"]}
    assert {"warm `make up` to ready (s)", "scale(4) to 4 connected, SLURM (s)",
            "scale(4), SLURM / local in the same run", "lab image (MB)", "compute node image (MB)",
            "speedup at 2 workers, share of the limit, slurm (lab study)",
            "the same from single `lab run`s, slurm"} <= set(figures)
    # scale(4) on SLURM, part by part, for the job the run waited for: each moment
    # after the one before (Slurm started the script after scale(), the nanny after
    # the script, ...), read from real job logs (the arithmetic: test_bench_parts).
    launch = {name.removesuffix("_seconds"): f["median"] for name, f in results["slurm_launch"].items()}
    assert all(launch[name] > 0 for name in ("slurm", "nanny", "worker", "connect"))
    assert "script start to its nanny's start" in (tmp_path / "results.md").read_text()
    # Two bare pythons of the kernel at once: the share of 2 this machine gave
    # (its arithmetic: test_bench_parts; its value moves with the host's load).
    assert results["ceiling"]["share_of_2"]["median"] > 0
    # SLURM's scale(4) pays a scheduling tick and two pythons per job that a LocalCluster does not.
    assert figures["scale(4), SLURM / local in the same run"]["median"] > 1
    assert cluster.queue() == []
