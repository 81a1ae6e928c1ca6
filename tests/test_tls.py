"""Shared login nodes: scheduler and workers talk TLS with credentials made
for each run, the worker jobs' copies readable by the user alone, and the
dashboard listens on loopback with the ssh tunnel to reach it printed."""

from __future__ import annotations

import stat

import dask.config
import pytest

from lab import config, spec, workers


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


def _tls_pair(tmp_path):
    """Two ends of a local TLS connection, handshake done, nothing pending."""
    import socket
    import ssl

    from distributed.security import Security

    credentials = Security.temporary()
    (tmp_path / "cert.pem").write_text(credentials.tls_scheduler_cert)
    (tmp_path / "key.pem").write_text(credentials.tls_scheduler_key)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    a, b = socket.socketpair()
    ends = [server_context.wrap_socket(a, server_side=True, do_handshake_on_connect=False),
            client_context.wrap_socket(b, do_handshake_on_connect=False)]
    waiting = list(ends)
    for end in ends:
        end.setblocking(False)
    for _ in range(100):
        for end in list(waiting):
            try:
                end.do_handshake()
                waiting.remove(end)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    assert not waiting, "the TLS handshake did not finish"
    for end in ends:  # the session tickets TLS 1.3 sends after the handshake
        with pytest.raises(ssl.SSLWantReadError):
            end.recv(1)
    return ends


def test_a_stale_openssl_error_does_not_break_another_connection(tmp_path):
    """CPython #148594: an error one connection left on the thread's OpenSSL
    queue turned a plain "no data yet" on another into BrokenPipeError, which
    closed the client's connection to the scheduler (Debian 13, OpenSSL 3.5).
    Importing lab installs the fix; the image's .pth installs it everywhere."""
    import ctypes
    import ssl

    import lab  # noqa: F401  (installs lab.openssl_queue)
    from lab import openssl_queue

    assert openssl_queue.installed()
    server, client = _tls_pair(tmp_path)
    libssl = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
    libssl.ERR_set_error.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
    libssl.ERR_new()
    libssl.ERR_set_error(2, 32, None)  # ERR_LIB_SYS, EPIPE: what a closed peer leaves
    with pytest.raises(ssl.SSLWantReadError):
        client.recv(10)
    server.close()
    client.close()
