"""Settings come from dask's config system, with one precedence."""

import os
import subprocess
import sys

import dask.config
import pytest

from lab import config


def test_defaults_are_the_lessons():
    assert config.lab("size") == 40_000_000
    assert config.lab("parts") == 4
    assert config.lab("backend") == "auto"
    assert config.slurm("cores") == 1
    assert config.slurm("memory") == "256M"
    assert config.slurm("walltime") == "00:05:00"


def test_slurmcluster_without_arguments_gets_the_lessons_job():
    from dask_jobqueue import SLURMCluster

    # Job scripts are plain text from plain data; the scheduler is local and closed.
    with dask.config.set({"jobqueue.slurm.interface": None, "jobqueue.slurm.scheduler-options": {
            "host": "127.0.0.1", "dashboard_address": ":0"}}):
        with SLURMCluster() as cluster:
            script = cluster.job_script()
    assert "#SBATCH -t 00:05:00" in script
    assert "#SBATCH --mem=245M" in script
    assert "#SBATCH --cpus-per-task=1" in script and "--nthreads 1" in script
    assert "--nanny" in script and "--no-dashboard" in script  # the nanny stays; no bokeh per worker


def python(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), check=True).stdout.strip()


@pytest.mark.parametrize("env, key, expected", [
    ({"DASK_LAB__PARTS": "7"}, "lab.parts", "7"),
    ({"DASK_LAB__WORKER_TIMEOUT": "300"}, "lab.worker-timeout", "300"),
    ({"DASK_JOBQUEUE__SLURM__MEMORY": "1GB"}, "jobqueue.slurm.memory", "1GB"),
    ({"DASK_JOBQUEUE__SLURM__ACCOUNT": "def-me"}, "jobqueue.slurm.account", "def-me"),
])
def test_environment_overrides_defaults(env, key, expected):
    assert python(f"import lab.config, dask; print(dask.config.get({key!r}))", env) == expected


def test_yaml_file_overrides_defaults(tmp_path):
    (tmp_path / "site.yaml").write_text("lab:\n  size: 123\njobqueue:\n  slurm:\n    queue: short\n")
    code = "import lab.config as c; print(c.lab('size'), c.slurm('queue'), c.slurm('cores'))"
    assert python(code, {"DASK_CONFIG": str(tmp_path)}) == "123 short 1"


def test_flags_override_config(tmp_path, monkeypatch):
    from lab import spec

    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    with dask.config.set({"lab.parts": 5, "lab.size": 11, "jobqueue.slurm.memory": "2G",
                          "jobqueue.slurm.interface": None}):
        run = spec.resolve("run", {"backend": "slurm", "parts": "9", "memory": "1G"}).run
        assert (run.parts, run.size, run.slurm["memory"]) == (9, 11, "1G")
        assert spec.resolve("run", {"backend": "slurm"}).run.slurm["memory"] == "2G"
    with dask.config.set({"lab.study.workers": [3, 5]}):
        assert [r.workers for r in spec.resolve("study", {"schedulers": ["threads"], "kernels": ["python"]}).runs] \
            == [3, 5]
        assert [r.workers for r in spec.resolve("study", {"schedulers": ["threads"], "kernels": ["python"],
                                                          "workers": ["2"]}).runs] == [2]


def test_a_run_spec_is_frozen_all_the_way():
    import dataclasses

    from lab import spec

    run = spec.RunSpec("slurm", workers=1, size=1, parts=1, slurm={"memory": "1G"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.workers = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.slurm["memory"] = "2G"  # type: ignore[index]


@pytest.mark.parametrize("scheduler, kernel", [("mpi", "python"), ("threads", "cython")])
def test_a_run_spec_takes_only_known_schedulers_and_kernels(scheduler, kernel):
    from lab import spec
    from lab.errors import BadInput

    with pytest.raises(BadInput, match="unknown (scheduler|kernel)"):
        spec.RunSpec(scheduler, workers=1, size=1, parts=1, kernel=kernel)


def test_bad_config_values_are_bad_input(monkeypatch):
    from lab import spec
    from lab.errors import BadInput

    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    with dask.config.set({"lab.backend": "cloud"}), pytest.raises(BadInput, match="--backend: unknown cloud"):
        spec.resolve("run", {})
    with dask.config.set({"jobqueue.slurm.walltime": "soon"}), pytest.raises(BadInput, match="walltime"):
        spec.resolve("run", {"backend": "slurm"})
    with dask.config.set({"lab.study.workers": [1, 0]}), pytest.raises(BadInput, match="--workers"):
        spec.resolve("study", {"schedulers": ["threads"]})
