"""The cluster driver of the tests and the benchmark (bench/bench.py): the
lab's version and images, and a compose cluster driven the way a user drives
it (make, docker compose, `lab run --json`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
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

    def compose(self, *args: str, timeout: float = 120, check: bool = False,
                files: str | None = None) -> subprocess.CompletedProcess:
        """docker compose in this cluster's project (`files`: its COMPOSE_FILE, else compose's default)."""
        done = subprocess.run(["docker", "compose", *args], cwd=ROOT,
                              env={**self.env, **({"COMPOSE_FILE": files} if files else {})},
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

    def queue(self, user: str = "learner") -> list[str]:
        return self.out(f"squeue -h -u {user} -o %i").split()

    def as_learner(self, name: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A login shell command as a directory learner of the strict site
        (make up SITE=strict), who is in no /etc/passwd: runuser looks them
        up through nslcd, as a site's login does."""
        return self.compose("exec", "-T", "login", "runuser", "-u", name, "--", "bash", "-lc", command,
                            timeout=timeout)

    def classroom(self, learners: int, exports: str, timeout: float = 600) -> list[dict]:
        """The lesson's SLURMCluster script (tests/lesson/code), typed by
        `learners` directory learners at once on the strict site, each in their
        own home with `exports` (what a site tells them to export, e.g.
        SBATCH_ACCOUNT=...). Per learner: name, exit status, output, seconds
        to the result, and each worker job's wait in the queue (sacct's Start
        minus Submit); and the controller's requests meanwhile (sdiag)."""
        script = (ROOT / "tests" / "lesson" / "code" / "compute-distributed.py").read_text()
        names = [f"learner{n:02d}" for n in range(1, learners + 1)]
        for name in names:
            done = self.as_learner(name, f"cat > ~/compute-distributed.py <<'EOF'\n{script}\nEOF")
            assert done.returncode == 0, done.stderr
        since = self.out("date +%Y-%m-%dT%H:%M:%S", user="root").strip()
        before = controller_requests(self.out("sdiag", user="root"))

        def one(name: str) -> dict:
            start = time.monotonic()
            done = self.as_learner(name, f"cd && {exports} python compute-distributed.py", timeout=timeout)
            return {"learner": name, "status": done.returncode, "output": done.stdout + done.stderr,
                    "seconds": time.monotonic() - start}

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=learners) as pool:
            runs = list(pool.map(one, names))
        elapsed = time.monotonic() - start
        requests = controller_requests(self.out("sdiag", user="root")) - before
        for run in runs:
            rows = self.out(f"sacct -n -P -X -u {run['learner']} -S {since} -o JobName,Submit,Start", user="root")
            run["queue_waits"] = [
                _seconds_between(submit, started) for job, submit, started in
                (row.split("|") for row in rows.splitlines() if row.strip()) if job == "dask-worker"]
        return [{**run, "elapsed": elapsed, "requests": requests} for run in runs]

    def logs(self) -> str:
        return self.compose("logs", "--tail=80").stdout


def controller_requests(sdiag: str) -> int:
    """Every remote procedure call slurmctld has served, by sdiag's count by user."""
    by_user = sdiag.split("Remote Procedure Call statistics by user", 1)[-1]
    return sum(int(count) for count in re.findall(r"count:(\d+)", by_user.split("\n\n")[0]))


def _seconds_between(first: str, second: str) -> float:
    """Seconds from one of sacct's times to another (Unknown: not started)."""
    parse = lambda text: time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))  # noqa: E731
    return parse(second) - parse(first) if not {first, second} & {"Unknown", "None"} else float("inf")
