"""The cluster driver of the tests and the benchmark (bench/bench.py): the
lab's version and images, and a compose cluster driven the way a user drives
it (make, docker compose, `lab run --json`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The lab's version, named once (lab/__init__.py): the tag of its images.
VERSION = __import__("lab").__version__


def image(name: str) -> str:
    """The tag of one of the lab's images: lab, worker, slurm, node, db, sif-builder."""
    return f"dask-slurm-lab/{name}:{VERSION}"


def make_value(name: str) -> str:
    """A value the Makefile decides (its print-% target), with the user's own
    setting of it, as make would use it."""
    return subprocess.run(["make", "-s", "--no-print-directory", f"print-{name}"], cwd=ROOT, capture_output=True,
                          text=True, check=True, env={k: v for k, v in os.environ.items() if k != "MAKEFLAGS"},
                          ).stdout.strip()


def build_apptainer_image() -> subprocess.CompletedProcess:
    """The Slurm image with a real Apptainer (containers/Dockerfile's
    slurm-apptainer stage, on the lab image), as lab.sif's tests and
    bench/apptainer.py run it: image("slurm-apptainer")."""
    return subprocess.run(["docker", "build", "-q", "--target", "slurm-apptainer", "--build-arg",
                           f"LAB_IMAGE={image('lab')}", "-t", image("slurm-apptainer"), "-f", "containers/Dockerfile",
                           "."], cwd=ROOT, capture_output=True, text=True, timeout=1800)


# The images `make images` builds, named once: the Makefile's IMAGES.
IMAGE_NAMES = [tag.split("/")[1].split(":")[0] for tag in make_value("IMAGES").split()]

PROJECT = os.environ.get("LAB_TEST_PROJECT", "dask-slurm-lab-test")
# The cluster's node count: the Makefile's NODES (its default, or the user's).
NODES = int(make_value("NODES"))
# The host folders' owner, whose uid the learner takes: not the image's
# default 1000, so the mapping is what the tests exercise (root can chown).
FOLDER_OWNER = 1234 if os.getuid() == 0 else os.getuid()


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll predicate() with a monotonic clock; its truthy value, or an error."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """The test cluster, driven the way a user drives it: make and docker compose."""

    def __init__(self, workdir: Path, results: Path, project: str = PROJECT, dashboard_port: int = 18787):
        self.env = dict(os.environ, COMPOSE_PROJECT_NAME=project, LAB_WORKDIR=str(workdir),
                        LAB_RESULTS=str(results), DASHBOARD_PORT=str(dashboard_port))
        self.project = project
        self.workdir = workdir
        self.results = results

    def make(self, *args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env or self.env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def compose(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker", "compose", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def sh(self, command: str, user: str = "learner", service: str = "login",
           timeout: float = 300) -> subprocess.CompletedProcess:
        """A login shell command on a cluster node (as a learner would type it)."""
        return self.compose("exec", "-T", "-u", user, service, "bash", "-lc", command, timeout=timeout)

    def out(self, command: str, **kwargs) -> str:
        done = self.sh(command, **kwargs)
        assert done.returncode == 0, f"{command!r} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def lab_run(self, flags: str, timeout: float = 300,
                env: str = "") -> tuple[dict | None, subprocess.CompletedProcess]:
        """`lab run` on the login node as the learner (`env`: VAR=value ... for
        it): its JSON result (None when it failed) and the finished command."""
        name = f"/tmp/result-{time.monotonic_ns()}.json"
        done = self.sh(f"{env} lab run {flags} --json {name}".strip(), timeout=timeout)
        result = json.loads(self.out(f"cat {name}")) if done.returncode == 0 else None
        return result, done

    def put_in_work(self, source: Path, name: str) -> Path:
        """A fresh copy of `source` as ~/work/<name>, the learner's (the host folder make up binds)."""
        copy = self.workdir / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy)
        for path in [copy, *copy.rglob("*")]:
            shutil.chown(path, FOLDER_OWNER, FOLDER_OWNER)
        return copy

    def queue(self) -> list[str]:
        return self.out("squeue -h -u learner -o %i").split()

    def logs(self) -> str:
        return self.compose("logs", "--tail=80").stdout
