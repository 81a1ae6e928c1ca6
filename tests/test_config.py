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
    from lab.cli import _settings, _slurm_options, build_parser

    args = build_parser().parse_args(["run", "--parts", "9", "--memory", "1G"])
    with dask.config.set({"lab.parts": 5, "lab.size": 11, "jobqueue.slurm.memory": "2G"}):
        assert _settings(args)["parts"] == 9
        assert _settings(args)["size"] == 11
        assert _slurm_options(args)["memory"] == "1G"


def test_bad_config_values_are_bad_input():
    from lab.checks import BadInput
    from lab.cli import _settings, _slurm_options, build_parser

    args = build_parser().parse_args(["run"])
    with dask.config.set({"lab.backend": "cloud"}), pytest.raises(BadInput, match="lab.backend"):
        _settings(args)
    with dask.config.set({"jobqueue.slurm.walltime": "soon"}), pytest.raises(BadInput, match="walltime"):
        _slurm_options(args)
