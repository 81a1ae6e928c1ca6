"""Faults, abuse and security, against the real compose cluster (marker
`faults`). Each test records its numbers; the session writes them to
build/fault-report.md (the README's table comes from there)."""

from __future__ import annotations

import json
import subprocess
import time
import pytest

from conftest import NODES, PROJECT, ROOT, wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

REPORT: list[tuple[str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def write_report():
    yield
    out = ROOT / "build" / "fault-report.md"
    out.parent.mkdir(exist_ok=True)
    lines = ["| fault, input or check | result |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in REPORT]
    out.write_text("\n".join(lines) + "\n")


def record(name: str, **numbers) -> None:
    REPORT.append((name, "pass; " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in numbers.items())))


def ready(cluster) -> float:
    """`make up` until the cluster is ready again; its seconds."""
    start = time.monotonic()
    done = cluster.make("up", f"NODES={NODES}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
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
    background_run(cluster, "--workers 4 --size 40000000", "killed")
    def running():
        rows = [line.split() for line in cluster.out("squeue -h -u learner -t R -o '%i %N'").splitlines()]
        return rows if len(rows) == 4 else None

    rows = wait_until(running, 60, what="4 running worker jobs")
    wait_until(lambda: "computing 4 parts" in cluster.out("cat /tmp/killed.log"), 60,
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
    result, done = lab_json(cluster, "--workers 2 --size 2000000")
    assert result["correct"] and result["workers_connected"] == 2
    record("controller restarted while idle", seconds_to_ready=round(time.monotonic() - start, 1),
           make_up_seconds=healed, next_run="correct")


def lab_json(cluster, flags: str):
    name = f"/tmp/r-{time.monotonic_ns()}.json"
    done = cluster.sh(f"lab run {flags} --json {name}", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(cluster.out(f"cat {name}")), done


def test_controller_restart_while_a_run_waits_for_workers(cluster):
    # Jobs queued when the controller stops start again once it has heard
    # from the nodes (about 30 s here): the run waits for them.
    background_run(cluster, "--workers 10 --worker-timeout 90 --size 2000000", "waiting")
    wait_until(lambda: len(cluster.queue()) >= 10, 60, what="10 worker jobs queued")
    start = time.monotonic()
    cluster.compose("restart", "slurmctld", check=True, timeout=120)
    result, log = wait_run(cluster, "waiting")
    assert result and result["correct"] and result["workers_connected"] == 8, log
    assert cluster.queue() == []
    record("controller restarted while `lab run --workers 10` waits", workers_connected=8,
           sum="correct", seconds_to_the_end_of_the_run=round(time.monotonic() - start, 1), jobs_left=0)


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
    assert before <= after
    record("accounting database restarted", seconds_to_sacct=answered, rows_lost=len(before - after),
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
    record("`make down && make up`", seconds=round(time.monotonic() - start, 1),
           home_kept="yes", results_kept="yes", accounting_rows_lost=len(jobs - sacct_ids(cluster)))


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

def layer_files(saved: bytes) -> set[str]:
    """Every file name in every layer of a `docker save` archive."""
    import io
    import tarfile

    names: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if member.name.endswith(".tar") or member.name.startswith("blobs/"):
                try:
                    with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                        names |= {name.lstrip("./") for name in layer.getnames()}
                except (tarfile.TarError, AttributeError):
                    continue  # a config or manifest blob, not a layer
    return names


def test_secrets_are_in_no_image_layer_and_not_in_git(cluster):
    import base64

    key = base64.b64decode(cluster.out("base64 -w0 /etc/munge/munge.key", user="root").strip())
    password = cluster.out("cat /run/lab-secrets/db_password", user="root").strip().encode()
    assert len(key) == 1024 and len(password) == 40
    for image in ("dask-slurm-lab/slurm:0.1.0", "dask-slurm-lab/lab:0.1.0", "dask-slurm-lab/db:0.1.0"):
        saved = subprocess.run(["docker", "save", image], capture_output=True, check=True).stdout
        files = layer_files(saved)
        assert files, f"no layers read from {image}"
        assert "etc/munge/munge.key" not in files and not any("lab-secrets" in f for f in files), image
        assert key not in saved and password not in saved, image
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "munge.key" not in tracked and "db_password" not in tracked
    grep = subprocess.run(["git", "grep", "-l", password.decode()], cwd=ROOT, capture_output=True)
    assert grep.returncode == 1  # the password is in no tracked file
    record("munge key and database password in no image layer, not in git", images_scanned=3,
           found=0)


def secret_digest(project: str, name: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "-v", f"{project}_secrets:/s:ro", "--entrypoint", "sha256sum",
         "dask-slurm-lab/slurm:0.1.0", f"/s/{name}"], capture_output=True, text=True, check=True,
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
    for command in ("cat /etc/munge/munge.key", "ls /run/lab-secrets", "cat /run/lab-secrets/db_password",
                    "sudo -n true", "su -c true root </dev/null"):
        assert cluster.sh(command, service=service).returncode != 0, command
    assert cluster.out("stat -c '%a %U' /etc/munge/munge.key", user="root", service=service).strip() \
        == "400 munge"
    assert cluster.out("grep NoNewPrivs /proc/self/status", service=service).split()[1] == "1"
    assert cluster.out("srun id -u").strip() == "1000"
    assert cluster.out("stat -c '%a %U' /etc/slurm/slurmdbd.conf", user="root",
                       service="slurmdbd").strip() == "600 slurm"
    record(f"learner on {service}: secrets unreadable, no root", tried=5, allowed=0)


def test_published_ports_bind_to_loopback_and_nothing_is_privileged(cluster):
    ids = cluster.compose("ps", "-q").stdout.split()
    inspected = json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                          text=True, check=True).stdout)
    published = []
    for container in inspected:
        host = container["HostConfig"]
        assert host["Privileged"] is False and not host.get("CapAdd")
        dropped = {cap.removeprefix("CAP_") for cap in host.get("CapDrop") or []}
        assert {"NET_RAW", "MKNOD", "SYS_CHROOT", "SETFCAP"} <= dropped
        assert "no-new-privileges:true" in (host.get("SecurityOpt") or [])
        for bindings in (container["NetworkSettings"]["Ports"] or {}).values():
            published += [b["HostIp"] for b in bindings or []]
    assert published and set(published) == {"127.0.0.1"}
    listening = subprocess.run(["ss", "-ltnH", "sport = :18787"], capture_output=True, text=True).stdout
    assert listening.strip() and all(line.split()[3].startswith("127.0.0.1:")
                                     for line in listening.splitlines())
    record("ports and privileges", containers=len(inspected), published_on="127.0.0.1 only",
           privileged=0)
