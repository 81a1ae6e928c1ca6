"""Shared fixtures. Cluster tests (marker `cluster`) share one real compose
cluster per session, under a project name of their own so a user's running
cluster is never touched; it is torn down, volumes included, at the end."""

from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict

import pytest

from tools.cluster import FOLDER_OWNER, NODES, ROOT, Cluster, make_value

# Where a whole run's time goes, by test file: build/test-times.md, which
# `make figures` puts in docs/figures.md (docs/test-times.md).
TIMES = ROOT / "build" / "test-times.md"
SPENT: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
SPENT_BY_TEST: dict[str, float] = defaultdict(float)
STARTED = time.monotonic()


@pytest.fixture(autouse=True)
def any_dashboard_port():
    """In-process clusters of the unit tests take any free dashboard port; and
    each test gets dask config back as it found it (a site profile a test
    loads is written into the global config, which dask.config.set's own
    restore does not cover)."""
    import copy

    import dask.config

    saved = copy.deepcopy(dask.config.config)
    try:
        with dask.config.set({"lab.dashboard-address": ":0"}):
            yield
    finally:
        dask.config.config.clear()
        dask.config.config.update(saved)


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """stand_in(NAME, BODY): a command NAME on PATH, first, whose shell script is
    BODY (a Slurm or Docker command as a test needs it to answer); its path."""
    folder = tmp_path / "stand-ins"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def make(name: str, body: str):
        command = folder / name
        command.write_text(f"#!/bin/sh\n{body}\n")
        command.chmod(0o755)
        return command
    return make


@pytest.fixture(scope="session")
def sif(tmp_path_factory):
    """lab.sif built the way `make sif` builds it where there is no apptainer
    (this machine's case; tests/test_sif.py checks it, and runs it, and the
    site rehearsal runs it on the cluster, with a real Apptainer)."""
    folder = tmp_path_factory.mktemp("sif")
    made = subprocess.run(["make", "--no-print-directory", "images"], cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    done = subprocess.run(["containers/make-sif.sh", str(folder / "lab.sif")], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "LAB_SIF_BUILDER": "container"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "building" in done.stdout and "in a container" in done.stdout
    folder.chmod(0o755)
    (folder / "lab.sif").chmod(0o644)
    return folder / "lab.sif"


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
    finally:  # every site's volumes (the strict site's /project and /scratch too)
        lab.compose("down", "--volumes", "--remove-orphans", timeout=180)
        lab.compose("down", "--volumes", timeout=180, files=make_value("EVERY_SITE"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed cluster test, attach the services' logs to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "cluster" in item.fixturenames:
        lab = item.funcargs["cluster"]
        report.sections.append(("cluster logs", lab.logs()[-20000:]))


def pytest_runtest_logreport(report):
    spent = SPENT[report.nodeid.split("::")[0]]
    spent[0] += report.duration  # setup (a session cluster's start falls in its first test's), call, teardown
    spent[1] += report.when == "call"
    SPENT_BY_TEST[report.nodeid] += report.duration


def pytest_sessionfinish(session, exitstatus):
    """After a whole run (every test, the cluster's included), write where its time went."""
    options = session.config.option
    if options.markexpr or options.keyword or getattr(options, "lf", False) or session.testscollected < 300:
        return
    total = time.monotonic() - STARTED
    lines = [f"# make test: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}", "",
             f"{session.testscollected} tests in {total:.0f} s ({total / 60:.1f} min), exit status {int(exitstatus)}, "
             f"{os.cpu_count()} cores; seconds per test file, setup and teardown included (a session's cluster "
             "start counts in the first test that uses it):", "",
             "| test file | tests | seconds | share |", "|---|---|---|---|"]
    for name, (seconds, count) in sorted(SPENT.items(), key=lambda item: -item[1][0]):
        lines.append(f"| {name} | {count} | {seconds:.0f} | {100 * seconds / total:.0f}% |")
    lines += ["", "The slowest tests:", "", "| test | seconds |", "|---|---|"]
    for name, seconds in sorted(SPENT_BY_TEST.items(), key=lambda item: -item[1])[:12]:
        lines.append(f"| {name.replace('|', '/')} | {seconds:.0f} |")
    TIMES.parent.mkdir(exist_ok=True)
    TIMES.write_text("\n".join(lines) + "\n")
