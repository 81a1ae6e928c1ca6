"""Shared fixtures. Cluster tests (marker `cluster`) share one real compose
cluster per session, under a project name of their own so a user's running
cluster is never touched; it is torn down, volumes included, at the end."""

from __future__ import annotations

import os

import pytest

from helpers import FOLDER_OWNER, NODES, Cluster


@pytest.fixture(autouse=True)
def any_dashboard_port():
    """In-process clusters of the unit tests take any free dashboard port."""
    import dask.config

    with dask.config.set({"lab.dashboard-address": ":0"}):
        yield


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("work")
    results = tmp_path_factory.mktemp("results")
    for folder in (workdir, results):
        os.chown(folder, FOLDER_OWNER, FOLDER_OWNER)
    lab = Cluster(workdir, results)
    up = lab.make("up", f"NODES={NODES}")
    try:
        if up.returncode != 0:
            pytest.fail(f"make up failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}")
        yield lab
    finally:
        lab.compose("down", "--volumes", "--remove-orphans", timeout=180)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed cluster test, attach the services' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "cluster" in item.fixturenames:
        lab = item.funcargs["cluster"]
        report.sections.append(("cluster logs", lab.logs()[-20000:]))
