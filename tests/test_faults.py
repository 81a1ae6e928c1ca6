"""Faults, abuse and security, against the real compose cluster (marker
`faults`). Each test records its numbers; the session writes them to
build/fault-report.md (docs/figures.md's table comes from there)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tools.cluster import FOLDER_OWNER, IMAGE_NAMES, NODES, PROJECT, ROOT, Cluster, image, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

REPORT: list[tuple[str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def write_report(request):
    """docs/figures.md's faults table comes from this file (make figures): written
    only by a whole, green run of this module, never a partial one."""
    yield
    if request.session.testsfailed or request.config.getoption("keyword") \
            or request.config.getoption("markexpr") not in ("", "cluster", "faults"):
        return
    out = ROOT / "build" / "fault-report.md"
    out.parent.mkdir(exist_ok=True)
    lines = ["| fault, input or check | result |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in REPORT]
    out.write_text("\n".join(lines) + "\n")


def record(name: str, **numbers) -> None:
    REPORT.append((name, "pass; " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in numbers.items())))


UP_OUTPUT: list[str] = []  # the last `make up`'s output, for a message when it was slow


def ready(cluster) -> float:
    """`make up` until the cluster is ready again; its seconds."""
    start = time.monotonic()
    done = cluster.make("up", f"NODES={NODES}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    UP_OUTPUT[:] = [done.stdout[-3000:] + done.stderr[-3000:]]
    return round(time.monotonic() - start, 1)


def background_run(cluster, flags: str, name: str) -> None:
    cluster.out(f"nohup lab run {flags} --json /tmp/{name}.json >/tmp/{name}.log 2>&1 &")


def wait_run(cluster, name: str, timeout: float = 300) -> tuple[dict | None, str]:
    wait_until(lambda: cluster.sh(f"pgrep -f '[v]env/bin/lab run .*/tmp/{name}.json'").returncode == 1,
               timeout, interval=1, what=f"run {name} to end")
    log = cluster.out(f"cat /tmp/{name}.log")
    found = cluster.sh(f"cat /tmp/{name}.json")
    return (json.loads(found.stdout) if found.returncode == 0 else None), log


def test_compute_node_killed_mid_run(cluster):
    # 8 parts of 40e6 on 4 workers sharing 2 cores: about 15 s of compute, so
    # the kill always lands in it; a run that ended first has no lost worker
    # and fails below rather than passing untested.
    background_run(cluster, "--workers 4 --parts 8 --size 40000000", "killed")
    def running():
        rows = [line.split() for line in cluster.out("squeue -h -u learner -t R -o '%i %N'").splitlines()]
        return rows if len(rows) == 4 else None

    rows = wait_until(running, 60, what="4 running worker jobs")
    wait_until(lambda: "computing 8 parts" in cluster.out("cat /tmp/killed.log"), 60,
               what="the compute to start")
    node = rows[0][1]
    start = time.monotonic()
    subprocess.run(["docker", "kill", f"{PROJECT}-{node}"], check=True, capture_output=True)
    result, log = wait_run(cluster, "killed")
    finished = round(time.monotonic() - start, 1)
    assert result and result["correct"], log
    assert result["workers_lost"] and {w["node"] for w in result["workers_lost"]} == {node}
    assert "workers lost during the compute" in log
    assert cluster.queue() == []
    healed = ready(cluster)
    record("compute node killed during `lab run --workers 4`", seconds_to_correct_sum=finished,
           workers_lost=len(result["workers_lost"]), jobs_left=0, seconds_to_heal_with_make_up=healed)


def test_controller_restart_while_idle(cluster):
    start = time.monotonic()
    cluster.compose("restart", "slurmctld", check=True, timeout=120)
    healed = ready(cluster)
    to_ready = round(time.monotonic() - start, 1)  # restart and make up, before any further run
    result, done = lab_json(cluster, "--workers 2 --size 2000000")
    assert result["correct"] and result["workers_connected"] == 2
    record("controller restarted while idle", seconds_to_ready=to_ready, of_which_make_up=healed,
           next_run="correct")


def lab_json(cluster, flags: str):
    result, done = cluster.lab_run(flags)
    assert done.returncode == 0, done.stdout + done.stderr
    return result, done


def test_controller_restart_while_a_run_waits_for_workers(cluster):
    # Jobs queued when the controller stops start again once it has heard
    # from the nodes (about 30 s here): the run waits for them. Two of the
    # ten never fit (8 slots), so the run ends at its worker timeout: 60 s
    # leaves the 8 twice the time they take.
    background_run(cluster, "--workers 10 --worker-timeout 60 --size 2000000", "waiting")
    wait_until(lambda: len(cluster.queue()) >= 10, 60, what="10 worker jobs queued")
    start = time.monotonic()
    cluster.compose("restart", "slurmctld", check=True, timeout=120)
    wait_until(lambda: cluster.sh("squeue -h -u learner -t R -o %i").stdout.split(), 120, interval=0.5,
               what="a worker job to run again")
    running_again = round(time.monotonic() - start, 1)
    result, log = wait_run(cluster, "waiting")
    assert result and result["correct"] and result["workers_connected"] == 8, log
    assert cluster.queue() == []
    record("controller restarted while `lab run --workers 10` waits", seconds_until_jobs_run_again=running_again,
           workers_connected=8, sum="correct", seconds_to_the_end_of_the_run=round(time.monotonic() - start, 1),
           jobs_left=0)


def sacct_ids(cluster) -> set[str]:
    return set(cluster.out("sacct -a -n -X -P -S 2020-01-01 -o JobID").split())


def test_accounting_database_restart_loses_no_record(cluster):
    before = sacct_ids(cluster)
    start = time.monotonic()
    cluster.compose("restart", "db", check=True, timeout=120)
    wait_until(lambda: cluster.sh("sacct -a -n -X -S 2020-01-01 -o JobID").returncode == 0, 120,
               interval=0.5, what="sacct to answer")
    answered = round(time.monotonic() - start, 1)
    job = cluster.out("sbatch --parsable --wait --wrap true").strip()
    wait_until(lambda: job in sacct_ids(cluster), 120, interval=1, what="the new job in sacct")
    after = sacct_ids(cluster)
    lost = before - after
    assert not lost, f"rows lost: {lost}"
    record("accounting database restarted", seconds_to_sacct=answered, rows_lost=len(lost),
           new_job_recorded="yes")


def test_down_then_up_keeps_home_results_and_accounting(cluster):
    cluster.out("echo kept > ~/marker")
    (cluster.results / "marker").write_text("kept")
    jobs = sacct_ids(cluster)
    key = cluster.out("sha256sum /etc/munge/munge.key", user="root").split()[0]
    start = time.monotonic()
    assert cluster.make("down").returncode == 0
    healed = ready(cluster)
    assert cluster.out("cat ~/marker").strip() == "kept"
    assert (cluster.results / "marker").read_text() == "kept"
    assert jobs <= sacct_ids(cluster)
    assert cluster.out("sha256sum /etc/munge/munge.key", user="root").split()[0] == key
    WARM.append(healed)
    record("`make down && make up`", seconds=round(time.monotonic() - start, 1), of_which_make_up=healed,
           home_kept="yes", results_kept="yes", accounting_rows_lost=len(jobs - sacct_ids(cluster)))


# --- a cluster stopped during a run comes back ready, with no job from before ---

WARM: list[float] = []  # `make up` after an idle `make down`: the warm start


def warm_start(cluster) -> float:
    if not WARM:
        assert cluster.make("down").returncode == 0
        WARM.append(ready(cluster))
    return WARM[0]


def start_a_long_run(cluster, name: str) -> list[str]:
    """A run whose 4 workers are computing; their job ids."""
    background_run(cluster, "--workers 4 --parts 8 --size 40000000", name)
    wait_until(lambda: "computing 8 parts" in cluster.out(f"cat /tmp/{name}.log"), 90,
               what="the run to start computing")
    return cluster.queue()


def came_back(cluster, jobs: list[str], stopped_at: float, what: str, **more) -> None:
    """make up: ready within the warm start + 10 s, no job from before, the next run right."""
    warm = warm_start(cluster)
    up = ready(cluster)
    assert up <= warm + 10, f"make up took {up}s after {what}; warm start is {warm}s:\n{UP_OUTPUT[0]}"
    assert cluster.queue() == []
    nodes = cluster.out("sinfo -h -N -o '%N %T'").split("\n")
    assert sorted(line.split()[1] for line in nodes if line) == ["idle"] * NODES, nodes
    states = wait_until(lambda: sacct_states(cluster, jobs), 60, what="the old jobs' final states")
    assert not any(state in ("PENDING", "RUNNING", "REQUEUED") for state in states.values()), states
    result, _ = lab_json(cluster, "--workers 2 --size 2000000")
    assert result["correct"] and result["workers_connected"] == 2
    record(f"{what} during `lab run --workers 4`", make_up_seconds=up, warm_start_seconds=warm,
           seconds_from_the_stop_to_the_next_run=round(time.monotonic() - stopped_at, 1),
           old_jobs=" ".join(sorted(set(states.values()))), jobs_left=0, next_run="correct", **more)


def sacct_states(cluster, jobs: list[str]) -> dict[str, str] | None:
    rows = cluster.out(f"sacct -n -X -P -j {','.join(jobs)} -o JobID,State").splitlines()
    states = {row.split("|")[0]: row.split("|")[1].split()[0] for row in rows if row.strip()}
    return states if set(states) == set(jobs) and "RUNNING" not in states.values() else None


def test_make_down_during_a_run_cancels_its_jobs(cluster):
    warm_start(cluster)
    jobs = start_a_long_run(cluster, "down")
    start = time.monotonic()
    assert cluster.make("down").returncode == 0
    came_back(cluster, jobs, start, "`make down`")
    assert set(sacct_states(cluster, jobs).values()) == {"CANCELLED"}  # not NODE_FAIL


def test_compose_kill_during_a_run(cluster):
    jobs = start_a_long_run(cluster, "kill")
    start = time.monotonic()
    cluster.compose("kill", check=True)
    came_back(cluster, jobs, start, "`docker compose kill` (every container SIGKILLed)")


def test_fewer_nodes_during_a_run(cluster):
    """Fewer nodes, of a new size too (as make up advises for the lesson's
    largest steps): Compose recreates them, and nodes 1..NODES remain."""
    jobs = start_a_long_run(cluster, "fewer")
    start = time.monotonic()
    fewer = cluster.make("up", "NODES=2", env={**cluster.env, "NODE_MEMORY": "1536"})
    assert fewer.returncode == 0, fewer.stdout[-2000:] + fewer.stderr[-2000:]
    assert cluster.out("sinfo -h -N -o '%N %m'").split() == ["compute-1", "1536", "compute-2", "1536"]
    came_back(cluster, jobs, start, "`make up NODES=2` after NODES=4")


@pytest.mark.skipif(os.environ.get("LAB_TEST_RESTART_ENGINE") != "1",
                    reason="restarts the Docker engine (every container on this machine): CI sets "
                           "LAB_TEST_RESTART_ENGINE=1")
def test_docker_engine_restart_during_a_run(cluster):
    jobs = start_a_long_run(cluster, "engine")
    start = time.monotonic()
    restart_engine()
    came_back(cluster, jobs, start, "the Docker engine restarted")


def restart_engine() -> None:
    """Stop the engine CI started (its pid file) and start it the same way."""
    pid = int(Path("/var/run/docker.pid").read_text())
    assert "dockerd" in Path(f"/proc/{pid}/cmdline").read_text()
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 120, interval=0.5, what="dockerd to stop")
    # As install-docker.sh starts it: in the background, outliving this test.
    subprocess.run(["sh", "-c", "nohup dockerd >>/var/log/dockerd.log 2>&1 &"], check=True)
    wait_until(lambda: subprocess.run(["docker", "info"], capture_output=True).returncode == 0, 120,
               interval=0.5, what="dockerd to answer")


def test_worker_jobs_are_never_requeued(cluster):
    assert "JobRequeue              = 0" in cluster.out("scontrol show config")
    job = cluster.out("sbatch --parsable --hold --wrap true").strip()
    try:
        assert "Requeue=0" in cluster.out(f"scontrol show job {job}")
    finally:
        cluster.out(f"scancel {job}")


def test_jobs_that_fail_at_once_are_explained_within_seconds(cluster):
    start = time.monotonic()
    done = cluster.sh("DASK_JOBQUEUE__SLURM__PYTHON=/opt/no-such/python "
                      "lab run --workers 2 --size 1000 --worker-timeout 120")
    seconds = round(time.monotonic() - start, 1)
    assert done.returncode == 1
    assert "FAILED" in done.stderr and "exit code 127:0" in done.stderr and "not found on the compute " \
        "nodes; set jobqueue.slurm.python" in done.stderr and "/opt/no-such/python" in done.stderr, done.stderr
    assert seconds < 10, f"the reason came after {seconds}s"
    assert cluster.queue() == []
    record("worker jobs whose python the nodes lack (`jobqueue.slurm.python`)", exit_status=1,
           seconds_to_the_reason=seconds, says="FAILED, exit 127, set jobqueue.slurm.python")


def test_a_run_from_a_folder_the_nodes_lack_still_works(cluster):
    """Slurm 22.05 failed such jobs at once; 24.11 runs them in the node's /tmp."""
    done = cluster.sh("mkdir -p /tmp/not-shared && cd /tmp/not-shared && "
                      "lab run --workers 2 --size 1000 --worker-timeout 120")
    assert done.returncode == 0 and "(correct)" in done.stdout, done.stdout + done.stderr
    assert cluster.queue() == []
    record("worker jobs submitted from a folder the nodes do not share (`/tmp`)", exit_status=0,
           says="correct: Slurm 24.11 runs the jobs in the node's /tmp")


def test_a_role_that_stops_at_start_ends_make_up_at_once(cluster, tmp_path):
    """A Slurm role whose container stops as it starts (slurmctld here, by a
    compose file added for the test): `make up` names it and shows its log in
    seconds, not at READY_TIMEOUT, on a cluster of its own."""
    override = tmp_path / "broken.yaml"
    override.write_text('services:\n  slurmctld:\n'
                        '    entrypoint: ["sh", "-c", "echo slurmctld stops on purpose; exit 3"]\n')
    folders = [tmp_path / "work", tmp_path / "results"]
    for folder in folders:
        folder.mkdir()
        os.chown(folder, FOLDER_OWNER, FOLDER_OWNER)
    broken = Cluster(*folders, project=f"{PROJECT}-broken", dashboard_port=18792)
    env = dict(broken.env, COMPOSE_FILE=f"{ROOT / 'compose.yaml'}:{override}", READY_TIMEOUT="180")
    start = time.monotonic()
    try:
        done = broken.make("up", "NODES=1", env=env, timeout=300)
        seconds = round(time.monotonic() - start, 1)
        assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]  # make's, for a failed recipe
        assert "error: the slurmctld container stopped while the cluster started" in done.stderr
        assert "slurmctld stops on purpose" in done.stdout  # its log, shown
        assert seconds < 60, seconds  # READY_TIMEOUT is 180
    finally:
        broken.compose("down", "--volumes", "--remove-orphans", timeout=180)
    assert not broken.compose("ps", "-a", "-q").stdout.split()
    record("a Slurm role stopping as it starts (`make up`)", exit_status=2, names="slurmctld, with its log",
           seconds_to_the_error=seconds)


def test_make_commands_twice_and_run_when_down(cluster):
    assert cluster.make("up", f"NODES={NODES}").returncode == 0
    assert cluster.make("down").returncode == 0
    again = cluster.make("down")
    assert again.returncode == 0
    start = time.monotonic()
    run = cluster.make("run", "WORKERS=2", "SIZE=100000")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "(correct)" in run.stdout and "cluster ready" in run.stdout
    clean = cluster.make("clean")  # asks; no terminal answers: nothing is deleted
    assert clean.returncode != 0 and "nothing deleted" in clean.stdout
    assert cluster.compose("ps", "-q", "login").stdout.strip()
    record("`make up` twice, `make down` twice, `make run` when down, `make clean` unasked",
           run_when_down_seconds=round(time.monotonic() - start, 1), clean_without_yes="deleted nothing")


def test_two_runs_at_once_do_not_collide(cluster):
    for name in ("twin-a", "twin-b"):
        background_run(cluster, "--workers 2 --size 3000000", name)
    (a, log_a), (b, log_b) = wait_run(cluster, "twin-a"), wait_run(cluster, "twin-b")
    assert a["correct"] and b["correct"], log_a + log_b
    assert not set(a["job_ids"]) & set(b["job_ids"])
    before = {p.name for p in cluster.results.iterdir()}
    cluster.out("(lab study --schedulers threads --kernels numpy --workers 1 --size 1000 >/dev/null 2>&1 &"
                " lab study --schedulers threads --kernels numpy --workers 1 --size 1000 >/dev/null 2>&1; wait)")
    new = {p.name for p in cluster.results.iterdir()} - before
    assert len(new) == 2 and all((cluster.results / n / "results.json").exists() for n in new)
    assert cluster.queue() == []
    record("two runs and two studies at once", both_sums="correct", shared_jobs=0,
           study_folders=len(new))


def test_worker_over_its_memory_limit_names_the_limit(cluster):
    done = cluster.sh("lab run --workers 1 --memory 60M --size 3000000 --worker-timeout 30", timeout=300)
    assert done.returncode == 1
    assert "over their memory limit (60M)" in done.stderr and "--memory" in done.stderr
    assert cluster.queue() == []
    record("worker over its memory limit (`--memory 60M`)", exit_status=1,
           message="names 60M and --memory", jobs_left=0)


def test_worker_job_over_its_walltime_names_the_limit(cluster):
    start = time.monotonic()
    done = cluster.sh("lab run --workers 1 --walltime 1 --size 3000000000 --worker-timeout 60", timeout=400)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "hit their walltime limit (1)" in done.stderr and "--walltime" in done.stderr
    assert cluster.queue() == []
    record("worker job over its walltime (`--walltime 1`, one minute)", exit_status=1,
           seconds_to_the_message=round(time.monotonic() - start, 1), jobs_left=0)


# --- bad input: every parameter, one line, exit 2, nothing submitted or written ---

BAD = [
    "run --workers 0", "run --workers -1", "run --workers abc", "run --workers ''", "run --workers 99999",
    "run --size 0", "run --size -5", "run --size 1e12", "run --parts x", "run --parts 0",
    "run --backend cloud", "run --worker-timeout -3", "run --memory lots", "run --memory 0",
    "run --walltime soon", "run --walltime 0", "run --cores 0", "--site nowhere run",
    "run --json /etc/hostname/out.json", "study --workers 1 0", "study --schedulers mpi",
    "study --kernels cython", "study --results /etc/hostname/r", "prep --gil-cpus 0", "seff abc",
]


def test_bad_lab_input_is_refused_before_anything(cluster):
    jobs = sacct_ids(cluster)
    results = {p.name for p in cluster.results.iterdir()}
    for args in BAD:
        done = cluster.sh(f"lab {args}")
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "error:" in done.stderr, (args, done.stderr)
    assert cluster.queue() == [] and sacct_ids(cluster) == jobs
    assert {p.name for p in cluster.results.iterdir()} == results
    record(f"bad `lab` input ({len(BAD)} cases)", exit_status=2, lines_each=1, jobs_submitted=0,
           files_written=0)


# --- security ---

def layers(saved: bytes) -> list[tuple[set[str], bytes]]:
    """Each layer of a `docker save` archive: its file names and its bytes,
    decompressed (a gzip-compressed layer would hide a secret's bytes)."""
    import gzip
    import io
    import tarfile

    found = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            raw = outer.extractfile(member).read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            try:
                with tarfile.open(fileobj=io.BytesIO(raw)) as layer:
                    found.append(({name.lstrip("./") for name in layer.getnames()}, raw))
            except tarfile.TarError:
                continue  # a config or manifest, not a layer
    return found


def test_secrets_are_in_no_image_layer_and_not_in_git(cluster):
    import base64

    key = base64.b64decode(cluster.out("base64 -w0 /etc/munge/munge.key", user="root").strip())
    password = cluster.out("cat /run/lab-secrets/db_password", user="root", service="slurmdbd").strip().encode()
    assert len(key) == 1024 and len(password) == 40
    tags = [image(name) for name in IMAGE_NAMES]
    for tag in tags:
        saved = subprocess.run(["docker", "save", tag], capture_output=True, check=True).stdout
        found = layers(saved)
        assert found, f"no layers read from {tag}"
        for files, raw in found:
            assert "etc/munge/munge.key" not in files, tag
            assert not any("lab-secrets" in f or "lab-munge" in f for f in files), tag
            assert key not in raw and password not in raw, tag
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "munge.key" not in tracked and "db_password" not in tracked
    grep = subprocess.run(["git", "grep", "-l", password.decode()], cwd=ROOT, capture_output=True)
    assert grep.returncode == 1  # the password is in no tracked file
    record("munge key and database password in no image layer, not in git", images_scanned=len(tags),
           found=0)


def secret_digest(project: str, name: str) -> str:
    volume = "munge-key" if name == "munge.key" else "secrets"
    return subprocess.run(
        ["docker", "run", "--rm", "-v", f"{project}_{volume}:/s:ro", "--entrypoint", "sha256sum",
         image("slurm"), f"/s/{name}"], capture_output=True, text=True, check=True,
    ).stdout.split()[0]


def test_each_new_cluster_makes_its_own_secrets(cluster):
    probe = f"{PROJECT}-probe"
    env = dict(cluster.env, COMPOSE_PROJECT_NAME=probe)
    try:
        subprocess.run(["docker", "compose", "run", "--rm", "--no-deps", "init"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
        for name in ("munge.key", "db_password"):
            assert secret_digest(probe, name) != secret_digest(PROJECT, name)
    finally:
        subprocess.run(["docker", "compose", "down", "--volumes"], cwd=ROOT, env=env, capture_output=True)
    record("two clusters get different munge keys and database passwords", same=0)


@pytest.mark.parametrize("service", ["login", "compute"])
def test_the_learner_cannot_read_secrets_or_become_root(cluster, service):
    for command in ("cat /etc/munge/munge.key", "ls /run/lab-munge", "cat /run/lab-munge/munge.key",
                    "su -c true root </dev/null"):
        assert cluster.sh(command, service=service).returncode != 0, command
    # The database password never reaches a node where learners run code
    # (looked for by its value), and there is no sudo to try.
    password = cluster.out("cat /run/lab-secrets/db_password", user="root", service="slurmdbd").strip()
    assert len(password) == 40
    assert cluster.sh(f"test -e /run/lab-secrets || grep -rqsF {password} /etc /run /tmp /var/spool /home/learner",
                      user="root", service=service).returncode == 1
    assert cluster.sh("command -v sudo", service=service).returncode == 1
    # munged runs with munge's own permission checks (no --force).
    munged = cluster.out("ps -o args= -C munged", user="root", service=service)
    assert "/usr/sbin/munged" in munged and "--force" not in munged
    assert cluster.out("stat -c '%a %U' /etc/munge/munge.key", user="root", service=service).strip() \
        == "400 munge"
    assert cluster.out("grep NoNewPrivs /proc/self/status", service=service).split()[1] == "1"
    assert cluster.out("srun id -u").strip() == str(FOLDER_OWNER)
    assert cluster.out("stat -c '%a %U' /etc/slurm/slurmdbd.conf", user="root",
                       service="slurmdbd").strip() == "600 slurm"
    record(f"learner on {service}: munge key unreadable, no database password, no root", tried=4, allowed=0)


def test_published_ports_bind_to_loopback_and_nothing_is_privileged(cluster):
    ids = cluster.compose("ps", "-q").stdout.split()
    inspected = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                          text=True, check=True).stdout)
    published = []
    for container in inspected:
        host = container["HostConfig"]
        assert host["Privileged"] is False
        # Compute nodes alone add SYS_PTRACE, for job accounting (compose.yaml).
        compute = container["Config"]["Labels"].get("com.docker.compose.service") == "compute"
        assert (host.get("CapAdd") or []) == (["CAP_SYS_PTRACE"] if compute else []), host.get("CapAdd")
        dropped = {cap.removeprefix("CAP_") for cap in host.get("CapDrop") or []}
        assert {"NET_RAW", "MKNOD", "SETFCAP", "AUDIT_WRITE", "SYS_CHROOT", "NET_BIND_SERVICE",
                "SETPCAP", "FSETID"} <= dropped
        assert "no-new-privileges:true" in (host.get("SecurityOpt") or [])
        for bindings in (container["NetworkSettings"]["Ports"] or {}).values():
            published += [b["HostIp"] for b in bindings or []]
    assert published and set(published) == {"127.0.0.1"}
    listening = subprocess.run(["ss", "-ltnH", "sport = :18787"], capture_output=True, text=True).stdout
    assert listening.strip() and all(line.split()[3].startswith("127.0.0.1:")
                                     for line in listening.splitlines())
    record("ports and privileges", containers=len(inspected), published_on="127.0.0.1 only",
           privileged=0)


# --- the user's data and machine ---

def test_the_learner_is_the_host_folders_owner_and_no_owner_changes(cluster):
    for service in ("login", "compute"):
        assert cluster.out("id -u learner; id -g learner", service=service).split() == [str(FOLDER_OWNER)] * 2
    cluster.out("cd ~/work && srun -N1 sh -c 'echo from-a-job > made-by-a-job'")
    made = cluster.workdir / "made-by-a-job"
    assert made.read_text() == "from-a-job\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (FOLDER_OWNER, FOLDER_OWNER)
    for folder in (cluster.workdir, cluster.results):
        assert (folder.stat().st_uid, folder.stat().st_gid) == (FOLDER_OWNER, FOLDER_OWNER)
    record("host folders owned by a uid other than 1000", learner_uid=FOLDER_OWNER,
           owners_changed=0, job_files_owned_by="the folders' owner")


def test_a_job_over_its_nodes_memory_is_killed_and_the_node_stays(cluster):
    # Slurm without cgroups does not enforce --mem; the node's own limit
    # (NODE_MEMORY, 2 GiB) does: the job dies, the node and the cluster do not.
    containers = cluster.compose("ps", "-q").stdout.split()
    job = cluster.out("sbatch --parsable --mem=256M --wrap "
                      "\"python -c 'x = b\\\"x\\\" * (3 * 2**30)'\"").strip()
    wait_until(lambda: job not in cluster.queue(), 120, interval=0.5, what="the job to end")
    row = wait_until(lambda: cluster.out(f"sacct -n -X -P -j {job} -o State,ExitCode,NodeList").strip(),
                     30, what="accounting of the job")
    state, exit_code, node = row.split("|")
    assert state == "FAILED" and exit_code == "9:0", row  # SIGKILL from the node's OOM killer
    wait_until(lambda: cluster.out(f"sinfo -h -N -n {node} -o %T").strip() == "idle", 30,
               what=f"{node} to be idle again")
    assert cluster.compose("ps", "-q").stdout.split() == containers  # no container died
    result, _ = lab_json(cluster, "--workers 2 --size 2000000")
    assert result["correct"]
    record("job allocating 3 GiB on a 2 GiB node (`--mem=256M`)", state=f"{state} {exit_code}",
           node=f"{node} idle again", containers_lost=0, next_run="correct")


def healthy(cluster, service: str, index: int = 1) -> bool:
    return cluster.compose("exec", "-T", "--index", str(index), service, "healthcheck").returncode == 0


def drained_is_unhealthy(cluster, nodes: str, service: str) -> None:
    """While `nodes` are drained, `service`'s health check fails; then it heals."""
    cluster.out(f"scontrol update nodename={nodes} state=drain reason=health-test", user="root")
    try:
        assert not healthy(cluster, service), f"{service} reported healthy with {nodes} drained"
    finally:
        cluster.out(f"scontrol update nodename={nodes} state=resume", user="root")
    wait_until(lambda: healthy(cluster, service), 30, what=f"{service} to be healthy again")


def test_health_checks_fail_when_the_service_is_not_usable(cluster):
    node = cluster.out("cat /run/lab-node", user="root", service="compute").strip()
    assert healthy(cluster, "compute") and healthy(cluster, "slurmdbd") and healthy(cluster, "login")
    drained_is_unhealthy(cluster, node, "compute")  # a drained node
    drained_is_unhealthy(cluster, ",".join(f"compute-{n}" for n in range(1, NODES + 1)), "login")  # no usable node

    cluster.compose("stop", "db", check=True)
    try:
        assert not healthy(cluster, "slurmdbd"), "slurmdbd reported healthy without its database"
    finally:
        cluster.compose("start", "db", check=True)
    wait_until(lambda: healthy(cluster, "slurmdbd"), 120, interval=1, what="slurmdbd to be healthy")
    record("health checks: a drained node, no usable node, the database stopped",
           reported_healthy=0, healthy_again="yes")


def test_a_learner_cannot_read_the_accounting_password(cluster):
    """The database password reaches db and slurmdbd only: nothing a learner
    can run on the login node shows it (Slurm's config dumps included)."""
    password = cluster.out("cat /run/lab-secrets/db_password", user="root", service="slurmdbd").strip()
    assert len(password) == 40
    seen = cluster.sh("sacctmgr show config; scontrol show config; sacctmgr show stats; "
                      "cat /etc/slurm/*.conf /run/lab-secrets/* 2>&1; env; ls -la /run", timeout=60)
    assert "StorageHost" in seen.stdout or "AccountingStorage" in seen.stdout  # the dumps did run
    assert password not in seen.stdout + seen.stderr
    record("a learner reads Slurm's config dumps, files and environment for the database password", found=0)


FORK_BOMB = """
import subprocess
procs, error = [], ""
try:
    for _ in range(1500):
        procs.append(subprocess.Popen(["sleep", "120"]))
except OSError as err:
    error = str(err)
print(len(procs), error)
for proc in procs:
    proc.kill()
    proc.wait()
"""


def test_a_fork_bomb_ends_at_its_nodes_process_limit(cluster):
    """A learner's runaway processes stop at the login node's pids limit (1024),
    and the cluster answers meanwhile."""
    done = cluster.sh(f"python3 -c {shlex.quote(FORK_BOMB)}", timeout=180)
    started, error = done.stdout.split(" ", 1)
    assert int(started) < 1024 and "Resource temporarily unavailable" in error, done.stdout + done.stderr
    assert cluster.out("sinfo -h -o %T | sort -u").split() == ["idle"]  # the controller still answers
    assert cluster.out("pgrep -c -u learner -x sleep || true").strip() == "0"
    record("fork bomb on the login node (1500 processes)", stopped_at=f"{started} (pids limit 1024)",
           cluster="answers")


def test_login_restart_leaves_the_learners_files_as_they_are(cluster):
    """The login node gives the learner their home only when their uid
    changed (slurm-dev/give-home.py); a restart with the same uid changes
    no owner, so it cannot be raced into changing one it should not."""
    cluster.out("touch /home/learner/rootfile", user="root")
    try:
        cluster.compose("restart", "login", check=True, timeout=120)
        cluster.compose("exec", "-T", "login", "started", "120", check=True, timeout=150)
        assert cluster.out("stat -c %U /home/learner/rootfile").strip() == "root"
        assert cluster.out("stat -c %U /home/learner").strip() == "learner"
    finally:
        cluster.out("rm -f /home/learner/rootfile", user="root")
    ready(cluster)
    record("login node restarted: owners in the learner's home changed", files=0)
