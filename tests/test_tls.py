"""Shared login nodes: scheduler and workers talk TLS with credentials made
for each run, the worker jobs' copies readable by the user alone, and the
dashboard listens on loopback with the ssh tunnel to reach it printed."""

from __future__ import annotations

import stat
from pathlib import Path

import dask.config
import pytest

from lab import runner


def test_local_runs_talk_tls():
    with runner.open_cluster("local", {}) as cluster:
        assert cluster.scheduler_address.startswith("tls://")


def test_worker_jobs_get_tls_credentials_only_their_owner_reads(tmp_path, monkeypatch):
    folder = tmp_path / "tls"
    options = {"cores": 1, "memory": "256M", "walltime": "00:05:00",
               "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"}}
    with dask.config.set({"lab.tls-directory": str(folder), "jobqueue.slurm.interface": None}), \
            runner.open_cluster("slurm", options) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        script = cluster.job_script()
        files = list(folder.iterdir())
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    line = next(ln for ln in script.splitlines() if "distributed.cli.dask_worker" in ln)
    assert " tls://127.0.0.1:" in line and f"--tls-ca-file {folder}/" in line and "--tls-key" in line


def test_tls_can_be_turned_off():
    with dask.config.set({"lab.tls": False}), runner.open_cluster("local", {}) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")


@pytest.mark.parametrize("address, hint", [("127.0.0.1:0", True), (":0", False)])
def test_a_loopback_dashboard_comes_with_its_ssh_tunnel(address, hint):
    with dask.config.set({"lab.dashboard-address": address}), runner.open_cluster("local", {}) as cluster:
        said = runner.tunnel_hint(cluster)
    if hint:
        port = said.split("ssh -L ")[1].split(":")[0]
        assert said.startswith("dashboard: http://127.0.0.1:") and f"-L {port}:127.0.0.1:{port} " in said
    else:
        assert said is None


def test_the_default_dashboard_is_on_loopback_and_the_compose_profile_opens_it():
    defaults = Path(runner.__file__).with_name("lab.yaml").read_text()
    assert 'dashboard-address: "127.0.0.1:8787"' in defaults and "tls: true" in defaults
    compose = Path(runner.__file__).with_name("sites").joinpath("compose.yaml").read_text()
    assert 'dashboard-address: ":8787"' in compose
