"""Programs written against dask-jobqueue for a real cluster run unmodified
from the learner's home on the login node (tests/programs/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.cluster import wait_until

pytestmark = pytest.mark.cluster

PROGRAMS = Path(__file__).parent / "programs"


def run(cluster, name: str, command: str = "python {name}", timeout: float = 300) -> str:
    script = (PROGRAMS / name).read_text()
    cluster.out(f"cat > ~/{name} <<'EOF'\n{script}\nEOF")
    out = cluster.out(f"cd ~ && {command.format(name=name)}", timeout=timeout)
    wait_until(lambda: cluster.queue() == [], 60, what="every job of the program to leave squeue")
    return out


def test_two_core_two_gib_workers_scale_up_and_down(cluster):
    out = run(cluster, "two_core_workers.py")
    assert "threads=[2, 2] total=499500 left=0" in out, out


def test_adaptive_cluster_grows_and_shrinks(cluster):
    out = run(cluster, "adapt.py")
    fields = dict(item.split("=") for item in out.split() if "=" in item)
    assert fields["total"] == str(sum(range(16))) and fields["left"] == "0", out
    assert 2 <= int(fields["peak"]) <= 4, out


def test_worker_names_from_a_prologue_variable(cluster):
    out = run(cluster, "worker_names.py")
    assert "names=test-my-env-variable-value-0,test-my-env-variable-value-1" in out, out


def test_slurm_runner_under_srun(cluster):
    out = run(cluster, "runner.py", "srun -n 4 python {name}")
    assert "workers=2 total=499500" in out, out
