"""First contact: a fresh clone, as root (a cloud VM, WSL, a CI runner), and
the README's commands. The host folders bound into the learner's home are
made by `make up` (none is tracked), so they are the lab's to give to the
learner's uid; a run follows."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tools.cluster import PROJECT, ROOT

pytestmark = pytest.mark.cluster


@pytest.mark.skipif(os.getuid() != 0, reason="a fresh clone as root is what this test is about")
def test_a_fresh_clone_as_root_runs_the_readme_commands(tmp_path):
    """make up && make run WORKERS=4, on a cluster of its own (2 nodes of 2 CPUs: room for 4 workers)."""
    clone = tmp_path / "dask-slurm-lab"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone / "work").exists() and not (clone / "results").exists()  # no host folder is tracked
    if (ROOT / "wheelhouse").is_dir():  # the lock's wheels, already downloaded here: a cache, hash-checked
        shutil.copytree(ROOT / "wheelhouse", clone / "wheelhouse", copy_function=os.link)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAB_", "COMPOSE_"))}
    env.update(COMPOSE_PROJECT_NAME=f"{PROJECT}-clone", DASHBOARD_PORT="18793", NODES="2")
    try:
        for command in (["make", "up"], ["make", "run", "WORKERS=4"]):  # the README's, as written
            done = subprocess.run([*command, "--no-print-directory"], cwd=clone, env=env, capture_output=True,
                                  text=True, timeout=900, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "workers: 4 requested, 4 connected" in done.stdout
        assert "(correct)" in done.stdout
        for folder in ("work", "results"):  # made by make up, and given to the learner, never left to root
            assert (clone / folder).stat().st_uid == 1000, folder
    finally:
        subprocess.run(["docker", "compose", "down", "--volumes", "--remove-orphans"], cwd=clone, env=env,
                       capture_output=True, timeout=180)
