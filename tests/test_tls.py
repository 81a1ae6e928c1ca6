"""Shared login nodes: scheduler and workers talk TLS with credentials made
for each run, the worker jobs' copies readable by the user alone, and the
dashboard listens on loopback with the ssh tunnel to reach it printed."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import dask.config
import pytest

from lab import config, spec, workers

CANARY = Path(__file__).with_name("openssl_canary.py")


def resolved(backend: str = "local", **settings):
    """The run `lab run --backend BACKEND` would make under these dask settings."""
    with dask.config.set(settings):
        return spec.resolve("run", {"backend": backend, "workers": 1, "size": 10, "parts": 1}).run


def test_local_runs_talk_tls():
    with workers.open_workers(resolved()) as local:
        assert local.cluster.scheduler_address.startswith("tls://")


def test_worker_jobs_get_tls_credentials_only_their_owner_reads(tmp_path, monkeypatch):
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    folder = tmp_path / "tls"
    run = resolved("slurm", **{"lab.tls-directory": str(folder), "jobqueue.slurm.interface": None,
                               "jobqueue.slurm.scheduler-options": {"host": "127.0.0.1"},
                               "lab.dashboard-address": ":0"})
    with workers.open_workers(run) as jobs:
        assert jobs.cluster.scheduler_address.startswith("tls://")
        script = jobs.job_script()
        files = list(folder.iterdir())
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert list(folder.iterdir()) == []  # deleted when the run ends
    line = next(ln for ln in script.splitlines() if "distributed.cli.dask_worker" in ln)
    assert " tls://127.0.0.1:" in line and f"--tls-ca-file {folder}/" in line and "--tls-key" in line


@pytest.mark.parametrize("tls", [True, False])
def test_job_modes_ranks_talk_tls_with_credentials_of_the_job(tmp_path, tls):
    """The ranks of `lab job`'s srun (scheduler, client, a worker), here as
    three processes with srun's variables: rank 0 makes the job's credentials
    in a folder of the owner's alone, every rank uses them, the client deletes
    them at the end; lab.tls false is plain TCP."""
    import os

    lab = Path(sys.executable).with_name("lab")
    env = dict(os.environ, HOME=str(tmp_path), SLURM_NTASKS="3", SLURM_JOB_ID="77", DASK_LAB__TLS=str(tls).lower())
    ranks = [subprocess.Popen([lab, "run", "--runner", "--size", "100000", "--parts", "2",
                               "--json", tmp_path / "result.json"], env={**env, "SLURM_PROCID": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(3)]
    outputs = [rank.communicate(timeout=120)[0] for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0, 0], outputs
    assert f"scheduler {'tls' if tls else 'tcp'}://" in outputs[1]
    assert json.loads((tmp_path / "result.json").read_text())["correct"]
    folder = tmp_path / ".cache" / "dask-slurm-lab"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and not list(folder.glob("tls-*"))


def test_tls_can_be_turned_off():
    with workers.open_workers(resolved(**{"lab.tls": False})) as local:
        assert local.cluster.scheduler_address.startswith("tcp://")


@pytest.mark.parametrize("address, hint", [("127.0.0.1:0", True), (":0", False)])
def test_a_loopback_dashboard_comes_with_its_ssh_tunnel(address, hint):
    with workers.open_workers(resolved(**{"lab.dashboard-address": address})) as local:
        said = local.describe()
    if hint:
        (said,) = said
        port = said.split("ssh -L ")[1].split(":")[0]
        assert said.startswith("dashboard: http://127.0.0.1:") and f"-L {port}:127.0.0.1:{port} " in said
    else:
        assert said == []


def test_the_default_dashboard_is_on_loopback_and_the_compose_profile_opens_it():
    """What a run resolves to, from the shipped defaults and the compose site profile."""
    import yaml

    defaults = yaml.safe_load(config.DEFAULTS_FILE.read_text())["lab"]
    dask.config.update(dask.config.config, {"lab": defaults}, priority="new")  # conftest restores the config
    run = resolved()
    assert (run.dashboard, run.tls) == ("127.0.0.1:8787", True)
    config.use_site("compose")
    assert resolved().dashboard == ":8787"


def test_a_stale_openssl_error_does_not_break_another_connection():
    """CPython #148594: an error one connection left on the thread's OpenSSL
    queue turned a plain "no data yet" on another into BrokenPipeError, which
    closed the client's connection to the scheduler (Debian 13, OpenSSL 3.5).
    Importing lab installs the fix; the images' .pth installs it everywhere
    (tests/test_images.py, where the unfixed read is shown to fail too)."""
    done = subprocess.run([sys.executable, str(CANARY)], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout)["wrapped"] == "SSLWantReadError"


def test_every_read_write_handshake_and_shutdown_clears_the_queue():
    import ssl

    from lab import openssl_queue

    for name in ("recv", "recv_into", "read", "send", "sendall", "write", "do_handshake", "unwrap"):
        assert getattr(getattr(ssl.SSLSocket, name), "_clears_openssl_queue", False), name
    for name in ("read", "write", "do_handshake", "unwrap"):
        assert getattr(getattr(ssl.SSLObject, name), "_clears_openssl_queue", False), name
    assert openssl_queue.installed()


def test_a_stale_error_does_not_break_a_write_or_the_read_after_it():
    from openssl_canary import stale_epipe, tls_pair

    server, client, pump = tls_pair()
    stale_epipe()
    assert client.write(b"scheduler") == len(b"scheduler")
    pump()
    stale_epipe()
    assert server.read(64) == b"scheduler"


NO_SYMBOL = """
import ctypes
ctypes.CDLL = lambda *a, **k: (_ for _ in ()).throw(OSError("no such library"))  # as a static OpenSSL
import lab.openssl_queue as queue
from lab import doctor
from lab.spec import RunSpec
from lab.workers.distributed import security
print(queue.installed())
security(RunSpec("local", workers=1, size=1, parts=1))
security(RunSpec("local", workers=1, size=1, parts=1))
try:
    doctor.check_tls(RunSpec("local", workers=1, size=1, parts=1))
except doctor.Failed as failed:
    print("doctor:", failed, "| fix:", failed.fix)
"""


def test_where_the_fix_cannot_install_lab_says_so_once_and_doctor_fails():
    done = subprocess.run([sys.executable, "-c", NO_SYMBOL], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines()[0] == "False"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("lab: warning:")]
    assert len(warnings) == 1 and "the fix for CPython #148594 is off" in warnings[0]
    assert "doctor: TLS: this Python's ssl module has no ERR_clear_error" in done.stdout
    assert "fix: run lab from the lab image" in done.stdout


def test_job_modes_credentials_are_the_owners_alone_and_encryption_is_required(tmp_path, monkeypatch):
    """Rank 0 writes the job's credentials 0600; every rank's Security
    refuses plain TCP (require_encryption), rank 0's and a reader's alike."""
    from lab import job

    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / ".cache" / "dask-slurm-lab"
    folder.mkdir(parents=True, mode=0o700)
    with dask.config.set({"lab.tls": True}):
        made = job.job_security(0, "41", timeout=5)
        read = job.job_security(2, "41", timeout=5)
    path = job.credentials_file("41")
    assert path.parent == folder and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert made.require_encryption and read.require_encryption
    assert read.tls_ca_file == made.tls_ca_file and "BEGIN CERTIFICATE" in read.tls_ca_file
