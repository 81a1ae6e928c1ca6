"""The lab command, in process (main(argv) -> int) and once as installed."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from lab.cli import main

SMALL = ["--size", "20000", "--parts", "3"]


@pytest.mark.parametrize("argv, says", [
    (["run", "--workers", "0"], "--workers must be from 1 to 512 (got 0)"),
    (["run", "--workers", "-1"], "--workers must be a whole number"),
    (["run", "--workers", "abc"], "--workers must be a whole number"),
    (["run", "--workers", ""], "--workers must be a whole number"),
    (["run", "--workers", "100000"], "--workers must be from 1 to 512"),
    (["run", "--size", "-5"], "--size must be a whole number"),
    (["run", "--size", "0"], "--size must be from 1"),
    (["run", "--parts", "x"], "--parts must be a whole number"),
    (["run", "--worker-timeout", "0"], "--worker-timeout must be a positive number"),
    (["run", "--backend", "kubernetes"], "--backend: unknown kubernetes; choose from auto, slurm, local"),
    (["run", "--workers"], "expected one argument"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["seff", "abc"], "JOBID must be a whole number"),
    ([], "the following arguments are required: command"),
])
def test_bad_input_is_one_line_and_exit_2(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        status = main(argv)
        raise SystemExit(status)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1, err


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has a Slurm client")
def test_slurm_backend_without_slurm_is_bad_input(capsys):
    assert main(["run", "--backend", "slurm", *SMALL]) == 2
    assert "no Slurm client here (sbatch)" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, says", [
    ("--memory", "lots", "--memory must be a memory size"),
    ("--walltime", "5 minutes", "--walltime must be a Slurm time"),
    ("--cores", "0", "--cores must be from 1"),
])
def test_bad_slurm_settings_are_refused_before_submitting(flag, value, says, capsys, monkeypatch):
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    submitted = []
    monkeypatch.setattr("lab.run.run", lambda *a, **k: submitted.append(a))
    assert main(["run", "--backend", "slurm", flag, value]) == 2
    assert says in capsys.readouterr().err
    assert submitted == []


def test_unwritable_json_folder_is_refused_and_nothing_runs(tmp_path, capsys):
    target = tmp_path / "missing" / "result.json"
    assert main(["run", "--backend", "local", *SMALL, "--json", str(target)]) == 2
    assert "cannot write into" in capsys.readouterr().err
    assert not target.parent.exists()


def test_local_run_prints_the_lessons_output_and_a_correct_sum(tmp_path, capsys):
    out_file = tmp_path / "result.json"
    assert main(["run", "--backend", "local", "--workers", "2", *SMALL, "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "\nCompute time: " in out and "\nwall clock time:" in out
    assert "=" * 39 in out and "-" * 40 in out
    assert "sum: 599970000 (correct)" in out
    result = json.loads(out_file.read_text())
    assert result["correct"] and result["total"] == 3 * sum(range(20000))
    assert result["workers_connected"] == 2 and result["backend"] == "local"
    assert result["compute_seconds"] > 0 and result["wall_seconds"] >= result["compute_seconds"]
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    from lab.results import write_atomic

    target = tmp_path / "r.json"
    write_atomic(target, json.dumps({"run": 1}))
    with pytest.raises(TypeError):
        write_atomic(target, None)  # fails half-way: after the temporary file is made
    assert json.loads(target.read_text()) == {"run": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_installed_command_runs(tmp_path):
    lab = shutil.which("lab", path=os.path.dirname(sys.executable))
    assert lab, "the lab console script is not installed"
    done = subprocess.run([lab, "run", "--backend", "local", "--workers", "1", *SMALL],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(correct)" in done.stdout
    bad = subprocess.run([lab, "run", "--workers", "abc"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == ""


FAKE_CLIENT = """#!/bin/sh
echo "$FAKE_ERROR" >&2
exit 1
"""


@pytest.mark.parametrize("error, says", [
    ("sbatch: error while loading shared libraries: libslurmfull.so: cannot open shared object file",
     "missing a library the Slurm commands link"),
    ("squeue: fatal: Invalid user for SlurmUser slurm, ignored", "missing the SlurmUser of slurm.conf in passwd"),
    ("squeue: error: Couldn't find the specified plugin name for auth/munge looking at all files",
     "libmunge for auth/munge"),
    ("squeue: error: Munge encode failed: Failed to access \"/run/munge/munge.socket.2\"",
     "missing the munge socket"),
    ("squeue: error: Could not establish a configuration source", "missing slurm.conf"),
    ("squeue: error: Unable to contact slurm controller (connect failure)", "check that slurmctld runs"),
])
@pytest.mark.parametrize("backend", ["auto", "slurm"])
def test_a_broken_slurm_client_is_an_error_naming_what_it_lacks(error, says, backend, tmp_path, monkeypatch,
                                                                capsys):
    for name in ("sbatch", "squeue"):
        tool = tmp_path / name
        tool.write_text(FAKE_CLIENT)
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ERROR", error)
    assert main(["run", "--backend", backend, *SMALL]) == 2  # never a local run instead
    err = capsys.readouterr().err
    assert "the Slurm client does not work here" in err and says in err and err.count("\n") == 1, err


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has a Slurm client")
def test_auto_inside_apptainer_without_a_client_is_an_error(monkeypatch, capsys):
    monkeypatch.setenv("APPTAINER_CONTAINER", "/x/lab.sif")
    assert main(["run", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "no Slurm client here" in err and "bin/lab-apptainer" in err and "--backend local" in err


def test_job_script_is_one_srun_of_workers_plus_two_ranks(tmp_path, capsys):
    assert main(["job", "--workers", "3", "--size", "1000", "--results", str(tmp_path), "--queue", "short"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("#!/bin/bash\n") and "#SBATCH --ntasks=5\n" in script
    assert "#SBATCH --partition=short\n" in script and "#SBATCH --mem-per-cpu=512M\n" in script
    assert f'\nsrun lab run --runner --size 1000 --parts 4 --json "{tmp_path}/job-$SLURM_JOB_ID.json"\n' in script


def test_job_script_runs_every_rank_in_the_image(tmp_path, capsys, monkeypatch):
    sif = tmp_path / "lab.sif"
    sif.write_bytes(b"SIF")
    import dask.config
    with dask.config.set({"lab.apptainer.command": "/opt/apptainer/bin/apptainer"}):
        assert main(["job", "--sif", str(sif), "--results", str(tmp_path)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("srun ")][0]
    assert line.startswith(f'srun /opt/apptainer/bin/apptainer exec --bind "${{SLURM_TMPDIR:-/tmp}}" {sif} '
                           "lab run --runner")


def test_runner_outside_srun_is_bad_input(capsys, monkeypatch):
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    assert main(["run", "--runner"]) == 2
    assert "`lab job` writes such a job" in capsys.readouterr().err


def test_a_refused_worker_job_is_one_line_in_slurms_words_at_once(stand_in, monkeypatch, capfd):
    """A site's submit filter refuses the worker job: lab says so at once, in
    sbatch's own words (the site's line first), not after the worker timeout,
    and no traceback reaches the learner."""
    import time

    stand_in("sbatch", "echo \"sbatch: error: You must give an account (--account=def-prof1_cpu); see the site's "
                       "wiki\" >&2\necho 'sbatch: error: Batch job submission failed: Unspecified error' >&2\nexit 1")
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    start = time.monotonic()
    assert main(["run", "--backend", "slurm", "--workers", "2", "--size", "1000", "--worker-timeout", "60",
                 "--interface", sorted(os.listdir("/sys/class/net"))[0]]) == 1
    assert time.monotonic() - start < 15
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("lab run: error: sbatch refused the worker job: sbatch: error: You must give an account "
                          "(--account=def-prof1_cpu); see the site's wiki / sbatch: error: Batch job submission "
                          "failed: Unspecified error")


def test_a_worker_job_rate_limited_by_the_controller_is_submitted_again(stand_in, monkeypatch, capfd, tmp_path):
    """rl_enable: sbatch answers "rate limit exceeded" to a learner who asks
    too often; the worker job is submitted again after a pause, not failed
    (here the third answer is a refusal, which ends the run in its words)."""
    calls = tmp_path / "calls"
    stand_in("sbatch", f"cat >/dev/null; echo x >>{calls}; "
                       f"if [ $(wc -l <{calls}) -lt 3 ]; then "
                       "echo 'sbatch: error: Batch job submission failed: Rate limit exceeded, please retry "
                       "momentarily' >&2; else echo 'sbatch: error: Invalid account or account/partition "
                       "combination specified' >&2; fi; exit 1")
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    monkeypatch.setattr("lab.slurm.RATE_LIMITED", (0.01, 0.01, 0.01, None))
    assert main(["run", "--backend", "slurm", "--workers", "1", "--size", "1000", "--worker-timeout", "60",
                 "--interface", sorted(os.listdir("/sys/class/net"))[0]]) == 1
    assert calls.read_text().count("x") == 3
    assert "sbatch refused the worker job: sbatch: error: Invalid account" in capfd.readouterr().err


def test_a_job_mode_job_that_ends_without_a_result_says_why(stand_in, tmp_path, monkeypatch, capsys):
    """lab job --submit --wait: the job failed (accounting says so): one line
    with the state, the exit code and the advice for it, exit 1."""
    stand_in("sbatch", "cat >/dev/null; echo 123")
    stand_in("squeue", "exit 0")
    stand_in("sacct", "echo '123|FAILED|1:0|/home/learner'")
    monkeypatch.chdir(tmp_path)
    assert main(["job", "--submit", "--wait", "--results", str(tmp_path / "results")]) == 1
    err = capsys.readouterr().err
    assert err == ("lab job: error: job 123 ended without a result: FAILED (123; exit code 1:0): see the job's "
                   "output file (slurm-<job>.out, or jobqueue.slurm.log-directory)\n")


def test_a_controller_that_always_rate_limits_is_one_line_in_its_words_not_a_timeout(stand_in, monkeypatch,
                                                                                      capfd, tmp_path):
    import time

    calls = tmp_path / "calls"
    stand_in("sbatch", f"cat >/dev/null; echo x >>{calls}; echo 'sbatch: error: Batch job submission failed: "
                       "Rate limit exceeded, please retry momentarily' >&2; exit 1")
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    monkeypatch.setattr("lab.slurm.RATE_LIMITED", (0.01, 0.01, 0.01, None))
    started = time.monotonic()
    assert main(["run", "--backend", "slurm", "--workers", "1", "--size", "1000", "--worker-timeout", "120",
                 "--interface", sorted(os.listdir("/sys/class/net"))[0]]) == 1
    assert time.monotonic() - started < 60  # said at once, not after the worker timeout
    assert calls.read_text().count("x") == 4  # the first try and three more
    (line,) = [x for x in capfd.readouterr().err.splitlines() if x.startswith("lab run: error")]
    assert line.endswith("sbatch refused the worker job: sbatch: error: Batch job submission failed: "
                         "Rate limit exceeded, please retry momentarily")


def test_job_mode_does_not_import_the_run_module():
    """lab/job.py and lab/run.py each stand alone: run imports job for --runner
    only, and job imports nothing of run's (the printed result is banners')."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import sys, lab.job; print('lab.run' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_worker_jobs_carry_the_runs_account_over_the_learners_environment(stand_in, monkeypatch, capfd, tmp_path):
    """An Alliance learner's .bashrc sets SBATCH_ACCOUNT, which sbatch takes over
    the job script's #SBATCH -A: lab's --account must reach sbatch there too."""
    monkeypatch.setenv("SBATCH_ACCOUNT", "def-other")
    stand_in("sbatch", f"cat >/dev/null; echo \"$SBATCH_ACCOUNT\" >{tmp_path}/account; "
                       "echo 'sbatch: error: Batch job submission failed: Invalid account' >&2; exit 1")
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    assert main(["run", "--backend", "slurm", "--workers", "1", "--size", "1000", "--account", "def-prof1_cpu",
                 "--interface", sorted(os.listdir("/sys/class/net"))[0]]) == 1
    assert (tmp_path / "account").read_text().strip() == "def-prof1_cpu"


def test_a_job_mode_job_carries_its_account_over_the_learners_environment(stand_in, tmp_path, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", "def-other")
    stand_in("sbatch", f"cat >/dev/null; echo \"$SBATCH_ACCOUNT\" >{tmp_path}/account; echo 123")
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert main(["job", "--submit", "--account", "def-prof1_cpu", "--results", str(tmp_path / "results")]) == 0
    assert (tmp_path / "account").read_text().strip() == "def-prof1_cpu"
