"""The strict site (make up SITE=strict): a site as strict as an Alliance one,
rehearsed with the real Apptainer. Learners learner01..08 live in LDAP alone;
every job needs an account (a submit filter refuses one without, in the
site's words); the workshop reservation holds every node; the controller
rate-limits each user; the login node's default route is a network the
compute nodes do not reach. Every learner here is a directory learner, and
lab runs through lab.sif, the wrapper taken out of the image as the README says."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tools.cluster import NODES

pytestmark = pytest.mark.cluster

SIF = "/home/shared/lab.sif"  # on the shared home, where every node finds it
PLACED = "--account def-prof1_cpu --reservation workshop"
# The lesson's script sums 4 parts of range(4_000_000).
LESSON_SUM = 4 * (4_000_000 * (4_000_000 - 1) // 2)


@pytest.fixture(scope="module")
def site(cluster, sif):
    """The strict site, lab.sif on the shared home, each learner's wrapper out
    of it; the plain cluster again afterwards, for the tests after these."""
    up = cluster.make("up", "SITE=strict", f"NODES={NODES}", timeout=1200)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    try:
        login = cluster.compose("ps", "-q", "login").stdout.strip()
        cluster.out("mkdir -p /home/shared", user="root")
        subprocess.run(["docker", "cp", str(sif), f"{login}:{SIF}"], check=True, capture_output=True)
        cluster.out(f"chmod 0755 /home/shared && chmod 0644 {SIF}", user="root")
        for n in range(1, 9):
            take = cluster.as_learner(f"learner{n:02d}", f"cd && apptainer exec {SIF} cat /opt/lab/bin/lab-apptainer "
                                      "> lab-apptainer && chmod +x lab-apptainer")
            assert take.returncode == 0, take.stderr
        yield cluster
    finally:  # make up takes the strict site down first (bin/switch-site): its networks differ
        again = cluster.make("up", f"NODES={NODES}", timeout=1200)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "make up: the cluster runs as SITE=strict, not the plain cluster" in again.stderr


def lab(site, command: str, learner: str = "learner01", timeout: float = 600) -> subprocess.CompletedProcess:
    """`lab` through the image, as a directory learner in their home."""
    return site.as_learner(learner, f"cd && LAB_SIF={SIF} ./lab-apptainer lab {command}", timeout=timeout)


def test_the_learners_are_in_the_directory_alone_and_every_node_knows_them(site):
    assert site.sh("grep -c '^learner0' /etc/passwd", user="root").stdout.strip() == "0"
    done = site.as_learner("learner03", f"srun {PLACED} id -un")
    assert done.returncode == 0 and done.stdout.strip() == "learner03", done.stdout + done.stderr
    # In the image, the learner is who they are (the wrapper's passwd has them)
    done = lab(site, "--version", learner="learner03")
    assert done.returncode == 0, done.stderr
    assert site.as_learner("learner03", f"cd && LAB_SIF={SIF} ./lab-apptainer whoami").stdout.strip() == "learner03"


@pytest.mark.parametrize("command", ["run --workers 2", "study --schedulers slurm --workers 1 --results results",
                                     "prep --workers 1 --results results", "job --workers 1 --submit"])
def test_a_job_without_an_account_is_refused_in_one_line_at_once(site, command):
    start = time.monotonic()
    done = lab(site, f"{command} --reservation workshop")
    took = time.monotonic() - start
    name = command.split()[0]
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line.startswith(f"lab {name}: error: ")]
    assert len(lines) == 1, done.stderr
    assert "You have to specify an account for your job with --account=<account>" in lines[0]  # the site's words
    assert "Batch job submission failed" in lines[0]  # and Slurm's own
    assert took < 30, took  # not the 120 s worker timeout
    assert site.queue("learner01") == []
    # and no results folder, half-written or empty
    assert site.as_learner("learner01", "ls ~/results 2>/dev/null").stdout.split() == []


def test_doctor_passes_with_the_account_and_reservation_and_names_the_reservation_without(site):
    done = lab(site, f"doctor {PLACED}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[ok]") == 8 and "account 'def-prof1_cpu' is valid" in done.stdout
    assert re.search(r"\[ok\]   a worker job \(\d+ on compute-\d+\) started and connected", done.stdout)
    done = lab(site, "doctor --account def-prof1_cpu --worker-timeout 10")
    assert done.returncode == 1
    assert "would start it only at" in done.stdout and "give the workshop's reservation" in done.stdout
    assert "Reserved for maintenance" in done.stdout  # the pending job's reason, from squeue
    done = lab(site, "doctor --reservation workshop --worker-timeout 10")
    assert done.returncode == 1 and "[FAIL] Slurm refuses the worker job: " in done.stdout
    assert "You have to specify an account" in done.stdout
    assert site.queue("learner01") == []


def test_doctor_says_whether_the_class_fits_the_reservation_now(site):
    slots = NODES * 2  # nodes of 2 CPUs, lesson workers of 1 core
    fits = lab(site, f"doctor {PLACED} --learners {slots // 2} --workers 2")
    assert fits.returncode == 0, fits.stdout
    assert f"{slots // 2} learners x 2 worker job(s) of 1 core(s) and 245M fit reservation 'workshop' now: " \
           f"{slots} of {slots} free job slots" in fits.stdout
    crowd = lab(site, f"doctor {PLACED} --learners {slots} --workers 2")
    assert crowd.returncode == 1
    assert f"{slots} learners x 2 worker job(s) of 1 core(s) and 245M do not fit reservation 'workshop' now " \
           f"({slots} free job slots on {NODES} nodes): {slots // 2} run at once, the other {slots // 2} wait" \
           in crowd.stdout, crowd.stdout
    limit = lab(site, f"doctor {PLACED} --learners 1 --workers 9")
    assert "def-prof1_cpu's MaxJobs=8 per user is less than 9 workers" in limit.stdout, limit.stdout


def test_run_study_prep_and_job_mode_pass_for_a_directory_learner(site):
    """Without an interface named (lab's strict profile names none), through
    the image: the scheduler listens where the login node reaches slurmctld."""
    done = lab(site, f"run --workers 2 --size 2000000 {PLACED} --json run.json", learner="learner02")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(site.as_learner("learner02", "cat ~/run.json").stdout)
    assert result["correct"] and result["workers_connected"] == 2
    assert {w["user"] for w in result["workers"]} == {"learner02"}
    done = lab(site, f"study --schedulers slurm threads --workers 1 2 --kernels python --size 1000000 "
                     f"--results results {PLACED}", learner="learner02")
    assert done.returncode == 0, done.stdout + done.stderr
    table = site.as_learner("learner02", "cat ~/results/*/results.md").stdout
    assert table.count("| slurm |") == 2 and table.count("| threads |") == 2 and "wrong" not in table
    done = lab(site, f"prep --workers 1 --gil-cpus 1 --size 1000000 --results results {PLACED}",
               learner="learner02")
    assert done.returncode == 0, done.stdout + done.stderr
    snippets = site.as_learner("learner02", "cat ~/results/lesson-*/job-script.md").stdout
    assert "#SBATCH -A def-prof1_cpu" in snippets and "#SBATCH --reservation=workshop" in snippets
    assert "CPU Efficiency: " in site.as_learner("learner02", "cat ~/results/lesson-*/seff-1cpu.md").stdout
    # Job mode: one batch job, its ranks in the image by the runtime's absolute path, talking TLS.
    done = lab(site, f"job --workers 2 --size 1000000 --memory 0.5G --results results {PLACED} --submit --wait",
               learner="learner02")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(correct)" in done.stdout and "scheduler tls://" in done.stdout
    script = lab(site, f"job --memory 1GiB {PLACED}", learner="learner02").stdout
    assert "#SBATCH --mem-per-cpu=1024M" in script and " /usr/bin/apptainer exec " in script
    assert site.queue("learner02") == []


def test_each_job_has_its_own_node_local_scratch_and_the_sites_file_systems(site):
    """As on an Alliance site: a job's $SLURM_TMPDIR is a node-local folder of
    its own (/localscratch/<user>.<job>.0), the learner's alone, gone with the
    job; /project and /scratch are on every node. lab's strict profile gives
    its workers that local directory and binds both into the image."""
    done = site.as_learner("learner04", f"srun {PLACED} sh -c 'echo $SLURM_TMPDIR $SLURMD_NODENAME; "
                                        "stat -c %U:%a $SLURM_TMPDIR; touch /scratch/learner04/x "
                                        "/project/def-prof1/learner04 && echo shared'")
    assert done.returncode == 0, done.stdout + done.stderr
    tmp, node, owner, shared = done.stdout.split()
    assert re.fullmatch(r"/localscratch/learner04\.\d+\.0", tmp) and owner == "learner04:700" and shared == "shared"
    number = node.rsplit("-", 1)[1]
    left = site.compose("exec", "-T", "--index", number, "compute", "ls", "/localscratch").stdout.split()
    assert tmp.rsplit("/", 1)[1] not in left  # the epilog deleted it
    done = lab(site, f"run --workers 1 --size 1000000 {PLACED} --show-job-script", learner="learner04")
    assert done.returncode == 0 and "(correct)" in done.stdout, done.stdout + done.stderr
    worker = next(x for x in done.stdout.splitlines() if "distributed.cli.dask_worker" in x)
    assert "--bind=/project --bind=/scratch " in worker, worker[:700]
    assert "--local-directory $SLURM_TMPDIR" in worker, worker[:700]
    assert site.queue("learner04") == []


def test_a_bad_interface_or_memory_is_one_line(site):
    for flags, says in [("--interface nosuch0", "--interface: this machine has no network interface 'nosuch0'"),
                        ("--memory lots", "--memory must be a memory size such as 256M"),
                        ("--walltime soon", "--walltime must be a Slurm time")]:
        done = lab(site, f"run {flags} {PLACED}")
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    # Slurm's units for job mode's --mem-per-cpu, whatever the form given
    done = lab(site, f"job --memory '256 MB' {PLACED}")
    assert done.returncode == 0 and "#SBATCH --mem-per-cpu=256M" in done.stdout, done.stderr
    assert site.queue("learner01") == []


def test_an_interface_the_compute_nodes_cannot_reach_is_named(site):
    """eth0 of this login node is the site network (its default route): the
    worker jobs run, but cannot connect; lab says so and lists the interfaces."""
    route = site.out("ip route show default", user="root")
    site_if = re.search(r"dev (\S+)", route).group(1)
    done = lab(site, f"run --workers 1 --interface {site_if} --worker-timeout 30 {PLACED}")
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert re.search(r"1 worker job\(s\) run \(on compute-\d+\) but none reached the scheduler at tls://[\d.]+:\d+: "
                     r"the compute nodes cannot reach that address; name the network they share with this host "
                     rf"with --interface \(here: .*{site_if} [\d.]+", line), line
    assert site.queue("learner01") == []


def test_eight_learners_run_the_lessons_script_at_once(site):
    """The classroom: 8 directory learners type the lesson's SLURMCluster
    script at once, with the account and reservation exported as the site
    tells them (sbatch reads SBATCH_*); every sum right, no job left."""
    runs = site.classroom(8, "export SBATCH_ACCOUNT=def-prof1_cpu SBATCH_RESERVATION=workshop;")
    for run in runs:
        assert run["status"] == 0, run["output"][-2000:]
        assert f"sum: {LESSON_SUM}" in run["output"] and "Compute time: " in run["output"]
        assert len(run["queue_waits"]) == 1 and run["queue_waits"][0] < 300, run  # each learner's wait, from sacct
    assert all(site.queue(run["learner"]) == [] for run in runs)
