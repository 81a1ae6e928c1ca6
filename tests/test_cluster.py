"""The real thing: a compose SLURM cluster, Dask workers as Slurm jobs."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest

from lab.slurm import seconds as slurm_seconds
from tools.cluster import NODES, ROOT, wait_until

pytestmark = pytest.mark.cluster

SMALL = "--size 3000000"  # ~0.2 s a part here: the study's shape, quick


def test_cluster_has_its_nodes_idle_and_sized(cluster):
    rows = cluster.out("sinfo -h -N -o '%N %t %c %m'").split("\n")
    nodes = {line.split()[0]: line.split()[1:] for line in rows if line}
    assert sorted(nodes) == [f"compute-{n}" for n in range(1, NODES + 1)]
    assert all(state == ["idle", "2", "2048"] for state in nodes.values()), nodes
    # A job as large as dask-jobqueue's own tests ask for (2 cores, 2 GiB) fits a node.
    assert cluster.out("srun --cpus-per-task=2 --mem=2G nproc --all").strip().isdigit()


def test_the_controller_schedules_a_submitted_job_at_its_next_tick(cluster):
    # slurm.conf's batch_sched_delay=0: without it a worker job waits up to 3 s
    # for the pass its submission asks for (make bench measures how long).
    config = cluster.out("scontrol show config")
    assert "batch_sched_delay=0" in config.split("SchedulerParameters", 1)[1].split("\n", 1)[0], config


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_study_on_slurm_workers(cluster, workers):
    result, done = cluster.lab_run(f"--workers {workers} {SMALL}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert result["backend"] == "slurm"
    assert result["correct"] and result["total"] == 4 * 3000000 * 2999999 // 2
    assert result["workers_connected"] == workers
    assert len(result["job_ids"]) == workers
    # Each worker ran in its own Slurm job, on a compute node, as the learner.
    assert sorted(w["job"] for w in result["workers"]) == sorted(result["job_ids"])
    assert all(w["node"].startswith("compute-") for w in result["workers"])
    assert {w["user"] for w in result["workers"]} == {"learner"}
    assert "Compute time: " in done.stdout and "(correct)" in done.stdout
    # Nothing is left queued, and accounting knows every job.
    assert result["leftover_jobs"] == [] and cluster.queue() == []
    ids = ",".join(result["job_ids"])
    accounted = wait_until(lambda: set(cluster.out(f"sacct -n -X -P -j {ids} -o JobID,User").split()),
                           30, what="sacct to list the jobs")
    assert accounted == {f"{job}|learner" for job in result["job_ids"]}


def test_more_workers_than_slots_goes_on_with_those_that_started(cluster):
    # 4 nodes x 2 CPUs = 8 slots; 10 one-core workers cannot all start.
    result, done = cluster.lab_run(f"--workers 10 --worker-timeout 20 {SMALL}")
    assert done.returncode == 0, done.stdout + done.stderr
    note = [line for line in done.stdout.splitlines() if "after 20s; going on with 8" in line]
    assert note and note[0].startswith("2 worker job(s) still pending") and "Resources" in note[0], done.stdout
    assert result["workers_connected"] == 8 and result["correct"]
    assert cluster.queue() == []


def test_bad_input_submits_nothing(cluster):
    before = cluster.out("sacct -n -X -a -o JobID | wc -l")
    for flags in ["--workers 0", "--workers abc", "--size -5", "--memory lots", "--walltime soon"]:
        done = cluster.sh(f"lab run {flags}")
        assert done.returncode == 2, (flags, done.stderr)
        assert done.stderr.count("\n") == 1 and "error:" in done.stderr
    assert cluster.queue() == []
    assert cluster.out("sacct -n -X -a -o JobID | wc -l") == before


def test_ctrl_c_cancels_the_worker_jobs(cluster):
    # Ask for more workers than fit, so the run is still waiting when interrupted.
    cluster.sh(f"nohup lab run --workers 10 --worker-timeout 120 {SMALL} >/tmp/int.log 2>&1 &")
    wait_until(lambda: len(cluster.queue()) >= 10, 60, what="10 worker jobs in squeue")
    # The pattern matches the lab process, not the shell that runs pkill.
    cluster.out("pkill -INT -u learner -f '[v]env/bin/lab run'")
    wait_until(lambda: cluster.sh("pgrep -u learner -f '[v]env/bin/lab run'").returncode == 1, 60,
               what="lab run to exit")
    assert cluster.queue() == []
    assert "interrupted; worker jobs cancelled" in cluster.out("cat /tmp/int.log")


def test_lessons_script_runs_unmodified_with_srun(cluster):
    script = (Path(__file__).parent / "lesson" / "code" / "compute-distributed.py").read_text()
    cluster.out(f"cat > ~/compute-distributed.py <<'EOF'\n{script}\nEOF")
    before = cluster.out("sacct -n -X -P -u learner -o JobID").split()
    out = cluster.out("srun --job-name=lesson python compute-distributed.py", timeout=300)
    assert "#SBATCH --mem=245M" in out and "#SBATCH -t 00:05:00" in out  # print(cluster.job_script())
    assert "Compute time: " in out and "wall clock time:" in out
    compute = float(out.split("Compute time: ")[1].split("s")[0])
    assert 0 < compute < 120
    assert cluster.queue() == []

    def new_jobs():  # the script's own job and its worker job, as the learner
        rows = cluster.out("sacct -n -X -P -u learner -o JobID,JobName").splitlines()
        names = {row.split("|")[1] for row in rows if row.split("|")[0] not in before}
        return names if {"lesson", "dask-worker"} <= names else None

    wait_until(new_jobs, 30, what="sacct to list the lesson's job and its worker job")


def seff_report(cluster, job: str) -> str:
    def final_report():  # accounting writes the job's record a moment after it ends
        done = cluster.sh(f"seff {shlex.quote(job)}")
        return done.stdout if done.returncode == 0 and "learner/learner" in done.stdout \
            and "State: RUNNING" not in done.stdout else None

    return wait_until(final_report, 30, what=f"seff to report the finished job {job}")


def seff_figure(report: str, label: str) -> float:
    return float(report.split(f"{label}: ")[1].split()[0].rstrip("%"))


def test_seff_reports_a_finished_job(cluster):
    """The GIL episode's seff: CPU time and memory measured (100 MB held for
    3 s: Slurm samples once a second)."""
    job = cluster.out("sbatch --parsable --wait --wrap 'python -c \"import time; x = bytearray(100 * 2**20); "
                      "t = time.time(); [sum(range(10**5)) for _ in iter(lambda: time.time() - t < 3, False)]\"'"
                      ).strip()
    report = seff_report(cluster, job)
    assert f"Job ID: {job}" in report and "State: COMPLETED (exit code 0)" in report
    assert "User/Group: learner/learner" in report
    # Slurm's elapsed time is whole seconds, its CPU time is not: a job that kept
    # its core busy for 3.09 s of a "3 s" run is 103 % efficient, as seff says.
    wall = sum(int(part) * 60 ** i for i, part in
               enumerate(reversed(report.split("Job Wall-clock time: ")[1].split()[0].split(":"))))
    assert 0 < seff_figure(report, "CPU Efficiency") <= 100 * (wall + 1) / wall, report
    assert "of 256.00 MB" in report  # DefMemPerCPU of one CPU
    assert 100 <= seff_figure(report, "Memory Utilized") < 256, report


def test_seff_of_a_worker_job_ended_by_scancel(cluster):
    """Worker jobs end by scancel when the run closes: their CPU time and
    memory are still recorded (slurmstepd needs SYS_PTRACE for that)."""
    result, done = cluster.lab_run("--workers 1 --size 20000000")
    assert result and result["correct"], done.stderr
    (job,) = result["job_ids"]
    report = seff_report(cluster, job)
    assert "State: CANCELLED" in report
    assert seff_figure(report, "Memory Utilized") > 50, report  # a dask worker: python, dask, numpy
    assert slurm_seconds(report.split("CPU Utilized: ")[1].split()[0]) > 0.5, report


def test_jobs_run_as_the_unprivileged_user_and_the_munge_key_is_private(cluster):
    assert cluster.out("srun -N1 id -un").strip() == "learner"
    assert cluster.sh("cat /etc/munge/munge.key").returncode != 0
    assert cluster.out("stat -c '%a %U' /etc/munge/munge.key", user="root").strip() == "400 munge"
    assert cluster.out("stat -c '%a %U' /etc/munge/munge.key", user="root", service="compute").strip() \
        == "400 munge"


def test_doctor_passes_on_the_compose_cluster(cluster):
    done = cluster.sh("lab doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[ok]") == 8 and "all checks passed" in done.stdout
    assert "[ok]   sbatch --test-only accepts the worker job (sbatch: Job " in done.stdout
    assert "[ok]   TLS: OpenSSL's error queue is cleared" in done.stdout
    assert "partition 'debug' exists (the default)" in done.stdout
    assert "site compose" in done.stdout
    assert cluster.queue() == []


def test_doctor_names_the_bind_when_sbatch_is_missing(cluster):
    done = cluster.sh("env PATH=/opt/lab/venv/bin APPTAINER_CONTAINER=/images/lab.sif lab doctor")
    assert done.returncode == 1
    assert "[FAIL] sbatch/squeue do not answer" in done.stdout
    assert "bin/lab-apptainer" in done.stdout and "/run/munge" in done.stdout


def test_a_refused_worker_job_is_said_at_once_in_slurms_words(cluster):
    """Slurm refuses the worker job (here: a reservation it has not got): lab
    run says so in one line within seconds, not at the worker timeout (120 s)."""
    start = time.monotonic()
    done = cluster.sh("lab run --workers 2 --size 1000 --reservation nosuch")
    seconds = time.monotonic() - start
    assert done.returncode == 1 and seconds < 20, (done.returncode, seconds)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "lab run: error: sbatch refused the worker job: sbatch: error: Batch job submission failed: " \
        "Requested reservation is invalid" in done.stderr
    assert cluster.queue() == []


@pytest.mark.parametrize("flags, says", [
    ("--memory 64G", "memory 64G is more than a node of 'debug' has (2048 MB)"),
    ("--cores 4", "cores 4 is more than a node of 'debug' has (2)"),
    ("--queue gpu", "partition 'gpu' does not exist (there are: debug)"),
    ("--account def-nobody", "account 'def-nobody' is not one of learner's (lab)"),
    ("--reservation nosuch", "Slurm refuses the worker job: sbatch --test-only failed: allocation failure: "
                             "Requested reservation is invalid"),
])
def test_doctor_says_what_does_not_fit(cluster, flags, says):
    done = cluster.sh(f"lab doctor {flags} --worker-timeout 5")
    assert done.returncode == 1
    assert says in done.stdout, done.stdout
    assert cluster.queue() == []


def test_study_sweep_on_the_cluster_writes_its_files(cluster):
    done = cluster.sh("lab study --schedulers synchronous threads processes local slurm --kernels python "
                      "--workers 1 2 --size 2000000 --repeat 2", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = [p for p in cluster.results.iterdir() if p.is_dir() and not p.name.startswith("lesson-")]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "results.csv", "results.json", "results.md", "study.png"]
    rows = json.loads((run_dir / "results.json").read_text())
    assert [(r["scheduler"], r["workers_requested"]) for r in rows] == [
        ("synchronous", 1), ("threads", 1), ("threads", 2), ("processes", 1), ("processes", 2),
        ("local", 1), ("local", 2), ("slurm", 1), ("slurm", 2)]
    assert all(r["correct"] and r["workers_connected"] == r["workers_requested"] for r in rows)
    # Every scheduler's point timed twice on the same workers: its median and range.
    assert all(r["repeats"] == 2 and len(r["compute_times"]) == 2 for r in rows)
    assert all((r["compute_min"], r["compute_max"]) == (min(r["compute_times"]), max(r["compute_times"]))
               for r in rows)
    slurm_rows = [r for r in rows if r["scheduler"] == "slurm"]
    assert all(r["job_ids"] and r["nodes"].startswith("compute-") for r in slurm_rows)
    slurm = re.search(r"SLURM_VERSION=([\d.]+)-", (ROOT / "containers" / "Dockerfile").read_text()).group(1)
    assert all(r["slurm"] == slurm and r["image"].startswith("dask-slurm-lab/slurm") for r in rows)
    assert all(r["cores_available"] >= 1 and r["speedup"] for r in rows)
    assert "SLURM workers took" in done.stdout or "SLURM and local workers took the same" in done.stdout
    assert cluster.queue() == []


def test_prep_writes_the_lessons_snippets(cluster):
    done = cluster.sh("lab prep --workers 1 2 --gil-cpus 1 2 --size 2000000", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (out,) = [p for p in cluster.results.iterdir() if p.name.startswith("lesson-")]
    names = {p.name for p in out.iterdir()}
    assert {"job-script.md", "squeue-running.md", "compute-times.md", "gil-1cpu.md", "gil-2cpu.md",
            "seff-1cpu.md", "seff-2cpu.md"} <= names
    assert "#SBATCH --mem=245M" in (out / "job-script.md").read_text()
    assert " R " in (out / "squeue-running.md").read_text()
    table = (out / "compute-times.md").read_text()
    assert "| 1 |" in table and "| 2 |" in table and "| 12.33 | 1.00 |" in table  # beside the lesson
    assert "Compute time: " in (out / "gil-2cpu.md").read_text()
    assert "CPU Efficiency: " in (out / "seff-2cpu.md").read_text()
    assert "Cores per node: 2" in (out / "seff-2cpu.md").read_text()
    assert cluster.queue() == []


def test_job_mode_runs_the_study_as_one_batch_job(cluster):
    # No Slurm client needed by the ranks: sbatch once, then scheduler, client
    # and workers are ranks of one srun (dask-jobqueue's SLURMRunner).
    done = cluster.sh("cd ~ && lab job --workers 2 --size 2000000 --submit --wait", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    job = done.stdout.split("submitted job ")[1].split(";")[0]
    assert "Compute time: " in done.stdout and "(correct)" in done.stdout, done.stdout
    result = json.loads((cluster.results / f"job-{job}.json").read_text())
    assert result["backend"] == "runner" and result["correct"] and result["job_ids"] == [job]
    assert result["workers_connected"] == 2 and {w["job"] for w in result["workers"]} == {job}
    steps = cluster.out(f"sacct -n -P -j {job} -o JobID,NTasks,State").split()
    assert f"{job}.0|4|COMPLETED" in steps, steps
    assert cluster.queue() == []
