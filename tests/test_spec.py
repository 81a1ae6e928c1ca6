"""spec.resolve: every option reaches what it sets (SLURMCluster's job script,
job mode's script, the placement of every job), and bad values are refused."""

from __future__ import annotations

import dask.config
import pytest

from lab import spec
from lab.errors import BadInput

PLACED = ["--queue", "short", "--account", "def-prof1_cpu", "--reservation", "workshop", "--qos", "normal"]


@pytest.fixture(autouse=True)
def a_slurm_client(monkeypatch):
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)


def flags(*argv: str) -> dict:
    from lab.cli import build_parser

    return vars(build_parser().parse_args(list(argv)))


def worker_job_script(*argv: str) -> str:
    from dask_jobqueue import SLURMCluster

    run = spec.resolve("run", flags("run", "--backend", "slurm", *argv)).run
    options = {**run.slurm, "scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"}}
    with dask.config.set({"jobqueue.slurm.interface": None}), SLURMCluster(**options) as cluster:
        return cluster.job_script()


def test_every_placement_option_reaches_the_worker_job_script():
    script = worker_job_script(*PLACED, "--memory", "1GiB", "--cores", "2", "--walltime", "00:10:00")
    for line in ("#SBATCH -p short", "#SBATCH -A def-prof1_cpu", "#SBATCH --reservation=workshop",
                 "#SBATCH --qos=normal", "#SBATCH --cpus-per-task=2", "#SBATCH -t 00:10:00"):
        assert line in script.splitlines(), (line, script)
    assert "#SBATCH --mem=1G" in script.splitlines()


def test_every_placement_option_reaches_the_job_mode_script(tmp_path, capsys):
    from lab.cli import main

    assert main(["job", *PLACED, "--memory", "0.5G", "--results", str(tmp_path)]) == 0
    script = capsys.readouterr().out.splitlines()
    for line in ("#SBATCH --partition=short", "#SBATCH --account=def-prof1_cpu", "#SBATCH --reservation=workshop",
                 "#SBATCH --qos=normal", "#SBATCH --mem-per-cpu=512M", "#SBATCH --time=00:15:00"):
        assert line in script


def test_placement_comes_from_config_as_well():
    with dask.config.set({"jobqueue.slurm.reservation": "workshop", "jobqueue.slurm.account": "def-a"}):
        run = spec.resolve("run", flags("run", "--backend", "slurm")).run
    assert run.placement == ("--account=def-a", "--reservation=workshop")
    assert run.slurm["job_extra_directives"] == ["--reservation=workshop"]


def test_a_sites_own_directives_stay_beside_the_placement():
    """A site profile's job-extra-directives (a constraint, say) and lab's
    placement flags both reach the worker job script."""
    with dask.config.set({"jobqueue.slurm.job-extra-directives": ["--constraint=cascade"],
                          "jobqueue.slurm.reservation": "workshop"}):
        run = spec.resolve("run", flags("run", "--backend", "slurm")).run
    assert run.slurm["job_extra_directives"] == ["--constraint=cascade", "--reservation=workshop"]


def test_a_local_run_carries_no_slurm_setting_and_checks_none():
    with dask.config.set({"jobqueue.slurm.interface": "nosuch0"}):
        run = spec.resolve("run", flags("run", "--backend", "local")).run
    assert run.scheduler == "local" and dict(run.slurm) == {} and run.placement == ()


def test_a_study_gives_slurm_settings_to_its_slurm_runs_only():
    plan = spec.resolve("study", flags("study", "--schedulers", "threads", "slurm", "--kernels", "python",
                                       "--workers", "1", "2", "--account", "def-a"))
    by_scheduler = {(r.scheduler, r.workers): r for r in plan.runs}
    assert set(by_scheduler) == {("threads", 1), ("threads", 2), ("slurm", 1), ("slurm", 2)}
    assert all(dict(r.slurm) == {} and r.placement == () for r in plan.runs if r.scheduler == "threads")
    assert all(r.slurm["account"] == "def-a" for r in plan.runs if r.scheduler == "slurm")


@pytest.mark.parametrize("argv, slurm_runs", [([], True), (["--schedulers", "slurm", "threads"], True),
                                              (["--schedulers", "threads"], False)])
def test_a_study_asks_the_controller_once_whether_slurm_works(monkeypatch, argv, slurm_runs):
    """Its choice of schedulers and its check of the client are one probe (a
    site's controller serves a class at once), none without Slurm runs."""
    probes: list[int] = []
    monkeypatch.setattr("lab.slurm.client_problem", lambda: probes.append(1))
    plan = spec.resolve("study", flags("study", *argv, "--kernels", "python", "--workers", "1"))
    assert any(r.scheduler == "slurm" for r in plan.runs) == slurm_runs and len(probes) == int(slurm_runs)


@pytest.mark.parametrize("argv, says", [
    (["--account", "a;b"], "--account must be a Slurm name"),
    (["--reservation", ""], "--reservation must be a Slurm name"),
    (["--memory", "1 GiB per core"], "--memory must be a memory size"),
    (["--interface", "nosuch0"], "no network interface 'nosuch0'"),
])
def test_bad_worker_job_settings_are_refused(argv, says):
    with pytest.raises(BadInput, match=says):
        spec.resolve("run", flags("run", "--backend", "slurm", *argv))


def test_with_no_interface_the_scheduler_listens_where_this_host_reaches_the_controller(stand_in):
    """A login node with several networks: dask's own choice is the default
    route's address, which compute nodes may not reach; lab takes the address
    of the route to slurmctld (the cluster's network), from scontrol."""
    from lab import slurm

    stand_in("scontrol", "printf 'SlurmctldHost[0]        = ctl(127.0.0.1)\\nSlurmctldPort           = 6817\\n'")
    slurm.route_to_controller.cache_clear()
    try:
        with dask.config.set({"jobqueue.slurm.interface": None}):
            run = spec.resolve("run", flags("run", "--backend", "slurm")).run
        assert run.slurm["scheduler_options"]["host"] == "127.0.0.1"
        # A named interface is the user's choice: nothing is added.
        run = spec.resolve("run", flags("run", "--backend", "slurm", "--interface", "lo")).run
        assert "host" not in run.slurm["scheduler_options"] and run.slurm["interface"] == "lo"
    finally:
        slurm.route_to_controller.cache_clear()


def test_doctor_takes_workers_only_with_learners():
    plan = spec.resolve("doctor", flags("doctor", "--learners", "8", "--workers", "2"))
    assert plan.classroom == (8, 2) and plan.run.workers == 1  # its own check still starts one
    assert spec.resolve("doctor", flags("doctor", "--learners", "30")).classroom == (30, 1)
    with pytest.raises(BadInput, match="--workers goes with --learners"):
        spec.resolve("doctor", flags("doctor", "--workers", "2"))
