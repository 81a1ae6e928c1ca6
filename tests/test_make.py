"""make targets check what they need before they do anything (bin/preflight):
the variables (data, never shell text), then Docker, Compose v2, room for the
nodes and the host folders. No real Docker here: a stand-in `docker` records
every call, so "nothing was run" is checked, not assumed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tools.cluster import NODES, ROOT

FAKE_DOCKER = """#!/bin/sh
echo "$*" >>"$FAKE_LOG"
case "$1 $2" in
"info --format") printf '%s\\n' "$FAKE_INFO"; exit "${FAKE_INFO_STATUS:-0}" ;;
"compose version") [ -n "$FAKE_COMPOSE" ] || exit 1; echo "$FAKE_COMPOSE" ;;
"compose config")
    case "$3" in
    --environment) { cat .env 2>/dev/null; env; } ;;  # as Compose reads them: the environment wins
    *) echo "NAME REQUIRED DEFAULT VALUE ALTERNATE VALUE"  # --variables: compose.yaml's ${NAME:-default}s
       grep -o '[$][{][A-Z_]*:-[^}]*[}]' compose.yaml \\
           | sed 's/[$][{]\\([A-Z_]*\\):-\\(.*\\)[}]/\\1 false \\2/' | sort -u ;;
    esac ;;
esac
"""

# 24 GiB, 2 CPUs, a current engine and Compose: what CI has.
GOOD = {"FAKE_INFO": f"20.10.24 2 {24 * 2**30}", "FAKE_COMPOSE": "2.40.3"}


class Host:
    """make on a host whose `docker` is a stand-in, or missing."""

    def __init__(self, tmp: Path, docker: bool = True):
        self.tmp = tmp
        self.docker = docker
        self.log = tmp / "docker-calls"
        self.log.touch()
        bindir = tmp / "bin"
        bindir.mkdir()
        if docker:
            fake = bindir / "docker"
            fake.write_text(FAKE_DOCKER)
            fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        # As a user runs make: not as a sub-make of `make test` (its MAKEFLAGS).
        outer = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        self.env = {**outer, **GOOD, "NODES": str(NODES), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
                    "FAKE_LOG": str(self.log), "LAB_WORKDIR": str(tmp / "work"),
                    "LAB_RESULTS": str(tmp / "results"), "COMPOSE_PROJECT_NAME": "never-started"}

    def make(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        # Without the stand-in, no docker at all: the machine's is hidden too.
        hide = [] if self.docker else [str(ROOT / "tests" / "without-docker.sh")]
        return subprocess.run([*hide, "make", "--no-print-directory", *args], cwd=ROOT, text=True,
                              capture_output=True, env={**self.env, **env}, timeout=60,
                              stdin=subprocess.DEVNULL)

    def preflight(self, target: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bin/preflight", target], cwd=ROOT, text=True, capture_output=True,
                              env={**self.env, **env}, timeout=60)

    def learner_ids(self) -> subprocess.CompletedProcess:
        return subprocess.run(["bin/learner-ids"], cwd=ROOT, text=True, capture_output=True, env=self.env,
                              timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def one_line_exit_2(done: subprocess.CompletedProcess, says: str) -> None:
    # The recipe's own status (make reports it as "Error 2"), and its one line.
    assert done.returncode == 2 and "] Error 2" in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert len(lines) == 1 and says in lines[0], done.stderr


HOSTILE = ["1'; touch {mark}; echo '", "1; touch {mark}", "$(shell touch {mark})", "`touch {mark}`",
           "$$(touch {mark})", "1 2", "\"1\"", ""]
VARIABLES = [("run", "WORKERS"), ("run", "SIZE"), ("run", "PARTS"), ("run", "BACKEND"),
             ("run", "WORKER_TIMEOUT"), ("study", "WORKERS"), ("study", "SCHEDULERS"),
             ("study", "KERNELS"), ("lesson", "WORKERS"), ("up", "NODES"), ("up", "READY_TIMEOUT"),
             ("study", "REPEAT"), ("bench", "REPEAT"), ("bench", "COLD"), ("clean", "FORCE"),
             ("figures", "STUDY"), ("up", "APPTAINER"), ("lesson", "LESSON")]


@pytest.mark.parametrize("target, name", VARIABLES)
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_variable_is_refused_and_nothing_runs(host, target, name, hostile):
    if hostile == "1 2" and target in ("study", "lesson") and name == "WORKERS":
        pytest.skip("a list of worker counts is what a sweep takes")
    mark = host.tmp / "ran"
    done = host.make(target, f"{name}={hostile.format(mark=mark)}")
    one_line_exit_2(done, f"make {target}: error: {name} must be")
    assert not mark.exists(), "a variable's value ran as a command"
    assert host.calls() == [], "docker was called before the variables were checked"


@pytest.mark.parametrize("target, assignment, says", [
    ("run", "WORKERS=0", "WORKERS must be a whole number from 1 to 512 (got '0')"),
    ("run", "WORKERS=abc", "WORKERS must be a whole number from 1 to 512 (got 'abc')"),
    ("run", "SIZE=-5", "SIZE must be a whole number"),
    ("run", "PARTS=0", "PARTS must be a whole number from 1 to 10000"),
    ("run", "BACKEND=cloud", "BACKEND must be one of: auto slurm local (got 'cloud')"),
    ("run", "WORKER_TIMEOUT=0", "WORKER_TIMEOUT must be a positive number of seconds"),
    ("study", "WORKERS=1 0", "WORKERS must be whole numbers from 1 to 512"),
    ("study", "SCHEDULERS=threads mpi", "SCHEDULERS must be one or more of: synchronous threads"),
    ("study", "KERNELS=cython", "KERNELS must be one or more of: python numpy"),
    ("up", "NODES=0", "NODES must be a whole number from 1 to 64"),
    ("up", "NODES=65", "NODES must be a whole number from 1 to 64"),
    ("up", "NODES=99999999999999999999", "NODES must be a whole number from 1 to 64"),
    ("up", "READY_TIMEOUT=soon", "READY_TIMEOUT must be a whole number"),
    ("clean", "FORCE=yes", "FORCE must be one of: 0 1"),
    ("up", "APPTAINER=yes", "APPTAINER must be one of: 0 1"),
    ("up", "SITE=alliance", "SITE must be one of: plain strict"),
    ("lesson", "LESSON=/etc", "LESSON must be a lesson's folder in ./work, which the cluster sees as ~/work"),
    ("lesson", "LESSON=work/../etc", "LESSON must be a folder name of letters, digits"),
    ("lesson", "LESSON=work/nothing-here",
     "LESSON=work/nothing-here has no _episodes/ (Jekyll) nor episodes/ (Workbench) folder"),
])
def test_bad_values_say_what_is_allowed(host, target, assignment, says):
    one_line_exit_2(host.make(target, assignment), says)
    assert host.calls() == []


def test_good_values_pass_the_checks(host):
    done = host.preflight("study", WORKERS="1 2 4 8", SCHEDULERS="threads slurm", KERNELS="python",
                          SIZE="2000000", WORKER_TIMEOUT="2.5")
    assert done.returncode == 0, done.stderr


def test_make_study_hands_its_variables_to_lab_study(host):
    done = host.make("study", WORKERS="1 2", SCHEDULERS="threads processes", REPEAT="2", SIZE="3000000")
    assert done.returncode == 0, done.stderr
    (call,) = [c for c in host.calls() if "lab study" in c]
    assert call.endswith("login lab study --workers 1 2 --size 3000000 --schedulers threads processes "
                         "--repeat 2"), call


# --- first contact: Docker, its engine, Compose v2, room for the nodes ---

def test_no_docker_command_says_install_docker(tmp_path):
    done = Host(tmp_path, docker=False).make("run", "WORKERS=4")
    one_line_exit_2(done, "no docker command on this machine: install Docker")


@pytest.mark.parametrize("answer, says", [
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
     "docker is installed but its engine does not answer: start"),
    ("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
     "permission denied on the socket): add yourself to the docker group"),
])
def test_an_engine_that_does_not_answer_is_named(host, answer, says):
    done = host.make("up", FAKE_INFO=answer, FAKE_INFO_STATUS="1")
    one_line_exit_2(done, says)
    assert [c for c in host.calls() if not c.startswith("info")] == []  # nothing but the question


@pytest.mark.parametrize("compose, says", [
    ("", "Docker Compose v2 is missing"),
    ("2.12.2", "Docker Compose 2.12.2 is older than compose.yaml needs (2.24.0 or newer)"),
    ("v2.3.3", "Docker Compose 2.3.3 is older"),
])
def test_missing_or_old_compose_is_named(host, compose, says):
    one_line_exit_2(host.make("run", FAKE_COMPOSE=compose), says)


def test_newer_compose_passes(host):
    assert host.preflight("run", FAKE_COMPOSE="2.100.0").returncode == 0


def test_too_little_memory_for_the_nodes_says_how_many_fit(host):
    done = host.make("up", "NODES=4", FAKE_INFO=f"28.0.0 2 {2 * 2**30}")  # Docker Desktop's 2 GiB
    one_line_exit_2(done, "Docker has 2048 MiB of memory; 4 nodes of 2048 MiB need 8792 MiB: "
                          "use make up NODES=0")
    done = host.make("up", "NODES=4", FAKE_INFO=f"28.0.0 2 {6 * 2**30}")
    one_line_exit_2(done, "use make up NODES=2 (room for 4 of the lesson's workers)")
    assert not (host.tmp / "work").exists()  # nothing made


def test_room_is_reported_before_starting(host):
    """preflight up says what make up will start (make up prints it once the host folders are ready)."""
    done = host.preflight("up", NODES="4")
    assert done.returncode == 0, done.stderr
    assert "room for 8 of the lesson's workers" in done.stdout
    assert "share Docker's 2" in done.stdout  # 8 node CPUs on a 2-CPU engine


def test_the_plan_names_the_lesson_steps_these_nodes_cannot_run(host):
    """The numpy and array episodes' srun --mem=... before a learner meets Slurm's refusal."""
    small = host.preflight("up", NODES="2", FAKE_INFO=f"28.0.0 2 {16 * 2**30}")  # the default 2048 MiB nodes
    assert small.returncode == 0, small.stderr
    assert "lesson: srun --mem=3G, srun --mem=6G, srun --mem=7G --cpus-per-task=4 (the numpy and array episodes)" \
        " need a node of 7168 MiB and 4 CPUs: make up NODES=1 NODE_MEMORY=7168 NODE_CPUS=4" in small.stdout
    tight = host.preflight("up", NODES="1", FAKE_INFO=f"28.0.0 2 {4 * 2**30}")
    assert "Docker has 4096 MiB, too little for one" in tight.stdout
    big = host.preflight("up", NODES="1", NODE_MEMORY="7168", NODE_CPUS="4", FAKE_INFO=f"28.0.0 2 {16 * 2**30}")
    assert big.returncode == 0 and "lesson: every step fits these nodes" in big.stdout, big.stderr


# --- the host folders: the learner takes their owner's uid, never root's ---

def test_the_learner_takes_the_folders_owner(host):
    for name in ("work", "results"):
        (host.tmp / name).mkdir()
        os.chown(host.tmp / name, 1234, 2345)
    done = host.learner_ids()
    assert done.returncode == 0 and done.stdout.split() == ["1234", "2345"], done.stderr
    assert {(p.stat().st_uid, p.stat().st_gid) for p in (host.tmp / "work", host.tmp / "results")} \
        == {(1234, 2345)}  # no owner changed


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to own a folder by root")
def test_a_root_owned_folder_is_refused(host):
    (host.tmp / "work").mkdir()
    os.chown(host.tmp / "work", 0, 0)
    one_line_exit_2(host.make("up"), "is owned by root, and jobs never run as root")
    assert not [c for c in host.calls() if c.startswith("compose up")]
    assert (host.tmp / "work").stat().st_uid == 0


def test_folders_of_two_owners_are_refused(host):
    for name, uid in (("work", 1234), ("results", 1235)):
        (host.tmp / name).mkdir()
        os.chown(host.tmp / name, uid, uid)
    one_line_exit_2(host.make("up"), "have different owners")


def test_make_up_waits_with_cluster_ready_and_the_health_checks_are_rare():
    """Each health check is a process the engine starts in a container: at one a
    second, eight containers took 29 % of a 2-core machine's CPU from an idle
    cluster. `make up` waits with bin/wait-ready (cluster-ready); the checks run every 30 s."""
    dockerfile = (ROOT / "containers" / "Dockerfile").read_text()
    intervals = re.findall(r"^HEALTHCHECK --interval=(\d+)s", dockerfile, re.M)
    assert len(intervals) == 2 and all(int(seconds) >= 30 for seconds in intervals), intervals


# `docker compose` as bin/wait-ready meets it: each step's exit status (or a
# step that hangs, as one whose container stopped does), and what `ps -a` says.
FAKE_COMPOSE = """#!/bin/sh
echo "$*" >>"$FAKE_LOG"
case "$*" in
*" ps -a "*) printf '%s\\n' "$FAKE_PS" ;;
*" compute started "*) [ -z "$FAKE_HANG" ] || exec sleep "$FAKE_HANG"; exit "${FAKE_COMPUTE_STATUS:-0}" ;;
*" login cluster-ready "*) [ -z "$FAKE_HANG" ] || exec sleep "$FAKE_HANG"; exit "${FAKE_READY_STATUS:-0}" ;;
esac
"""
RUNNING = "db running 0\ninit exited 0\nslurmctld running 0\ncompute running 0\nlogin running 0"


def wait_ready(tmp_path, nodes: int = 3, **env: str) -> tuple[subprocess.CompletedProcess, list[str], float]:
    import time

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_COMPOSE)
    (bindir / "docker").chmod(0o755)
    log = tmp_path / "calls"
    log.touch()
    start = time.monotonic()
    done = subprocess.run([ROOT / "bin" / "wait-ready", str(nodes), "60"], text=True, capture_output=True,
                          timeout=60, env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
                                           "FAKE_LOG": str(log), "FAKE_PS": RUNNING, **env})
    calls = [c for c in log.read_text().splitlines() if " ps -a " not in c]
    return done, calls, time.monotonic() - start


def test_make_up_waits_for_every_compute_node_then_cluster_ready(tmp_path):
    makefile = (ROOT / "Makefile").read_text()
    up = makefile.split("\nup:", 1)[1].split("\n\n", 1)[0]
    assert "--wait" not in up and 'bin/wait-ready "$$NODES"' in up
    done, calls, _ = wait_ready(tmp_path)
    assert done.returncode == 0, done.stderr
    assert calls == [f"compose exec -T --index {i} compute started 60" for i in (1, 2, 3)] + \
        ["compose exec -T login cluster-ready 3 60"]


@pytest.mark.parametrize("failing", ["FAKE_COMPUTE_STATUS", "FAKE_READY_STATUS"])
def test_a_step_that_fails_fails_make_up_with_the_logs(tmp_path, failing):
    done, calls, _ = wait_ready(tmp_path, **{failing: "1"})
    assert done.returncode == 1
    assert "error: the cluster did not get ready; logs above" in done.stderr
    assert "compose logs --tail=40" in calls


@pytest.mark.parametrize("state", ["slurmctld restarting 0", "slurmctld exited 3", "init exited 1"])
def test_a_container_that_stops_while_the_cluster_starts_ends_the_wait_at_once(tmp_path, state):
    done, calls, seconds = wait_ready(tmp_path, FAKE_HANG="30", FAKE_PS=f"db running 0\n{state}")
    service = state.split()[0]
    assert done.returncode == 1 and seconds < 10, (done.returncode, seconds)
    assert f"error: the {service} container stopped while the cluster started; logs above" in done.stderr


def test_preflight_and_lab_take_their_rules_from_one_table(tmp_path):
    """lab/inputs.txt decides what WORKERS, SIZE, PARTS, REPEAT, BACKEND,
    SCHEDULERS and KERNELS take: a changed table changes what preflight
    refuses, and lab's flags refuse exactly past the table's bounds."""
    from lab import inputs, spec
    from lab.errors import BadInput

    (tmp_path / "bin").mkdir()
    (tmp_path / "lab").mkdir()
    shutil.copy(ROOT / "bin" / "preflight", tmp_path / "bin" / "preflight")
    table = inputs.TABLE.read_text().replace("WORKERS       1-512", "WORKERS       1-7")
    (tmp_path / "lab" / "inputs.txt").write_text(table.replace("KERNELS       python numpy", "KERNELS       numpy"))
    for env, says in (({"WORKERS": "8"}, "WORKERS must be a whole number from 1 to 7 (got '8')"),
                      ({"KERNELS": "python"}, "KERNELS must be one or more of: numpy (got 'python')")):
        done = subprocess.run([tmp_path / "bin" / "preflight", "run"], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=30)
        assert done.returncode == 2 and says in done.stderr, done.stderr
    for name in ("WORKERS", "SIZE", "PARTS", "REPEAT"):
        low, high = inputs.bounds(name)
        option = next(o for o in spec.OPTIONS if o.name == name.lower() and o.key and "prep" not in o.key)
        assert option.check(f"--{name.lower()}", high) == high
        with pytest.raises(BadInput, match=f"from {low} to {high}"):
            option.check(f"--{name.lower()}", high + 1)
    assert spec.BACKENDS == inputs.words("BACKEND") and spec.SCHEDULERS == inputs.words("SCHEDULERS")


def test_env_example_shows_compose_yamls_defaults():
    """The cluster's settings are decided in compose.yaml (${NAME:-default});
    .env.example, which a user copies to .env, shows each of them as it is."""
    defaults = dict(re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", (ROOT / "compose.yaml").read_text()))
    example = dict(re.findall(r"^#? ?([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    assert {"NODE_CPUS", "NODE_MEMORY", "LOGIN_MEMORY", "LAB_WORKDIR", "LAB_RESULTS", "DASHBOARD_PORT",
            "COMPOSE_PROJECT_NAME"} <= set(example)
    assert example == {name: defaults[name] for name in example}


def test_apptainer_1_adds_the_apptainer_nodes_file_and_their_images():
    """make up APPTAINER=1: compose reads slurm-dev/apptainer.yaml too (COMPOSE_FILE,
    compose's own convention), and make builds and checks the nodes' Apptainer images."""
    def value(name: str, *args: str) -> str:
        return subprocess.run(["make", "-s", "--no-print-directory", f"print-{name}", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert value("COMPOSE_FILE", "APPTAINER=1") == "compose.yaml:slurm-dev/apptainer.yaml"
    images = value("IMAGES", "APPTAINER=1").split()
    assert {"dask-slurm-lab/slurm-apptainer", "dask-slurm-lab/node-apptainer", "dask-slurm-lab/slurm"} <= \
        {tag.split(":")[0] for tag in images} and not any(tag.startswith("dask-slurm-lab/node:") for tag in images)
    assert value("COMPOSE_FILE") == "" and value("COMPOSE_FILE", "APPTAINER=0") == ""


def test_site_strict_adds_the_strict_file_over_the_apptainer_one_and_the_directorys_image():
    """make up SITE=strict: the real Apptainer's nodes (apptainer.yaml), then
    the strict site over them (strict.yaml), and make builds the LDAP image."""
    def value(name: str, *args: str) -> str:
        return subprocess.run(["make", "-s", "--no-print-directory", f"print-{name}", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert value("COMPOSE_FILE", "SITE=strict") == "compose.yaml:slurm-dev/apptainer.yaml:slurm-dev/strict.yaml"
    names = {tag.split(":")[0] for tag in value("IMAGES", "SITE=strict").split()}
    assert {"dask-slurm-lab/ldap", "dask-slurm-lab/slurm-apptainer", "dask-slurm-lab/node-apptainer"} <= names
    assert value("COMPOSE_FILE", "SITE=plain") == ""
