"""The site rehearsal: the compose cluster plays a real site for lab.sif, with
a real Apptainer (make up APPTAINER=1: slurm-dev/apptainer.yaml).

The login node is the site's login host (a Slurm client, munge, the config,
Apptainer); the learner takes the wrapper out of lab.sif, as the README says,
and runs `lab` and the lesson's own script through it: the host's Slurm client
bound in, worker jobs on the compute nodes running `apptainer exec` of the same
SIF, as the learner, with user namespaces and squashfuse.

Docker still plays the container in one test: an image whose glibc is older
than the site client's (no SIF of one is built here)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from lab.diagnose import client_error
from tools.cluster import FOLDER_OWNER, NODES, PROJECT, ROOT, image

pytestmark = pytest.mark.cluster

LAB_IMAGE = image("lab")
SIF = "/home/learner/lab.sif"


@pytest.fixture(scope="module")
def site(cluster, sif):
    """The cluster with Apptainer on its login and compute nodes, lab.sif in
    the learner's home and the wrapper beside it, taken out of the image; the
    plain cluster again afterwards, for the tests after these."""
    up = cluster.make("up", "APPTAINER=1", f"NODES={NODES}", timeout=1200)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    try:
        login = cluster.compose("ps", "-q", "login").stdout.strip()
        subprocess.run(["docker", "cp", str(sif), f"{login}:{SIF}"], check=True, capture_output=True)
        cluster.sh(f"chown learner: {SIF}", user="root")
        cluster.out("apptainer exec lab.sif cat /opt/lab/bin/lab-apptainer > lab-apptainer && chmod +x lab-apptainer")
        yield {"login": login}
    finally:
        again = cluster.make("up", f"NODES={NODES}", timeout=1200)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]


def test_the_nodes_run_a_real_apptainer_as_the_learner(cluster, site):
    assert cluster.out("apptainer --version").strip() == "apptainer version 1.4.5"
    # On a compute node, in a job, as the learner: a user namespace, no setuid.
    done = cluster.sh(f"srun apptainer exec {SIF} python -c 'import os; print(os.getuid(), os.uname()[1])'")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(rf"{FOLDER_OWNER} [0-9a-f]+\n", done.stdout), done.stdout + done.stderr


def test_lab_apptainer_finds_what_the_sites_client_needs(cluster, site):
    binds = cluster.out("LAB_BINDS_ONLY=1 ./lab-apptainer").strip().split(",")
    assert any(b.endswith(":/opt/site-slurm") for b in binds)
    assert {"/etc/slurm", "/run/munge"} <= set(binds)
    # passwd and group: the image's, with the learner and SlurmUser from the host's lookup
    files = {dest: source for source, _, dest in (b.partition(":") for b in binds) if dest in ("/etc/passwd",
                                                                                             "/etc/group")}
    passwd = cluster.out(f"cat {files['/etc/passwd']}")
    assert re.search(rf"^learner:[^:]*:{FOLDER_OWNER}:", passwd, re.M) and re.search(r"^slurm:", passwd, re.M)
    assert re.search(r"^slurm:", cluster.out(f"cat {files['/etc/group']}"), re.M)
    assert any("slurm" in b and not b.startswith("/etc") and ":" not in b for b in binds)  # PluginDir


def test_the_image_has_no_slurm_client_of_its_own(cluster):
    done = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", LAB_IMAGE, "-c",
                           "command -v sbatch squeue scontrol; ls /usr/lib/x86_64-linux-gnu/slurm-wlm"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and done.stdout == "" and "No such file" in done.stderr


def test_doctor_passes_through_the_bound_client(cluster, site):
    done = cluster.sh("./lab-apptainer lab doctor --worker-timeout 120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"in Apptainer image {SIF}" in done.stdout
    assert done.stdout.count("[ok]") == 8 and "all checks passed" in done.stdout
    assert "[ok]   sbatch --test-only accepts the worker job (sbatch: Job " in done.stdout
    assert re.search(r"\[ok\]   a worker job \(\d+ on compute-\d+\) started and connected", done.stdout)
    assert cluster.queue() == []


def test_run_starts_its_workers_in_the_image_on_the_compute_nodes(cluster, site):
    done = cluster.sh("./lab-apptainer lab run --workers 2 --size 2000000 --json rehearsal.json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(cluster.out("cat ~/rehearsal.json"))
    assert result["backend"] == "slurm" and result["correct"] and result["workers_connected"] == 2
    # Each worker's own job and node, through Apptainer's --cleanenv (what --env passes).
    assert all(w["node"].startswith("compute-") and w["job"] in result["job_ids"] for w in result["workers"])
    script = cluster.out("./lab-apptainer lab run --workers 1 --show-job-script")
    assert re.search(rf" /usr/bin/apptainer exec --cleanenv --env=\S+ --bind=\S+ {SIF} python -m distributed",
                     script), script
    assert cluster.queue() == []


def test_the_workers_keep_their_job_node_and_scratch_folder(cluster, site):
    """What a worker in the image sees of its job: --cleanenv drops the job's
    environment, lab's --env passes these three back."""
    cluster.out("cat > seen.py <<'EOF'\n"
                "import os, json\n"
                "from dask.distributed import Client\n"
                "from dask_jobqueue import SLURMCluster\n"
                "with SLURMCluster(cores=1, memory='256M') as cluster, Client(cluster) as client:\n"
                "    cluster.scale(1)\n"
                "    client.wait_for_workers(1, timeout=120)\n"
                "    names = ('SLURM_JOB_ID', 'SLURMD_NODENAME', 'SLURM_TMPDIR', 'APPTAINER_CONTAINER')\n"
                "    seen = lambda: {'in_sif': os.path.isdir('/.singularity.d'),\n"
                "                    **{n: os.environ.get(n) for n in names}}\n"
                "    print(json.dumps(list(client.run(seen).values())))\n"
                "EOF")
    # A site's scratch folder (here /dev/shm, not the /tmp lab falls back to), from the job's environment.
    done = cluster.sh("SLURM_TMPDIR=/dev/shm ./lab-apptainer python seen.py")
    assert done.returncode == 0, done.stdout + done.stderr
    (seen,) = json.loads(done.stdout.strip().splitlines()[-1])
    # In the image (its root has Apptainer's layout), not in the node's own python.
    assert seen["in_sif"] is True
    assert seen["SLURM_JOB_ID"].isdigit() and seen["SLURMD_NODENAME"].startswith("compute-")
    assert seen["SLURM_TMPDIR"] == "/dev/shm" and seen["APPTAINER_CONTAINER"] == SIF
    assert cluster.queue() == []


def test_the_lessons_own_script_runs_unmodified_through_the_image(cluster, site):
    """SLURMCluster with only cores, memory and walltime, as the lesson writes
    it: the image names its workers' python (the same SIF, the same runtime)."""
    lesson = (ROOT / "tests" / "lesson" / "code" / "compute-distributed.py").read_text()
    cluster.out(f"cat > compute-distributed.py <<'EOF'\n{lesson}\nEOF")
    done = cluster.sh("./lab-apptainer python compute-distributed.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/usr/bin/apptainer exec --cleanenv" in done.stdout and f"{SIF} python -m distributed" in done.stdout
    assert re.search(r"Compute time: \d+\.\d+s", done.stdout) and "wall clock time:" in done.stdout
    assert "Traceback" not in done.stderr
    assert cluster.queue() == []


def test_a_lessons_dry_run_through_the_image_runs_in_the_learners_own_shell(cluster, site):
    """./lab-apptainer lab lesson: the steps run on the login host, where the
    site's module, virtualenv and srun are (the image has no `module`)."""
    cluster.put_in_work(ROOT / "tests" / "lesson", "site-lesson")
    before = set(cluster.results.glob("lesson-run-*"))
    done = cluster.sh("./lab-apptainer lab lesson ~/work/site-lesson --episodes setup jobs", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (out,) = set(cluster.results.glob("lesson-run-*")) - before
    setup = json.loads((out / "setup.json").read_text())
    assert [s["status"] for s in setup] == ["ok"] * 4  # module load python among them
    jobs = {s["command"]: s for s in json.loads((out / "jobs.json").read_text())}
    # The page's last hello.py (an excerpt put into the first), written by the learner's own shell.
    assert re.fullmatch(r"Hello from compute-\d+ in job \d+", jobs["srun python hello.py"]["output"][0])
    assert "State: COMPLETED" in "\n".join(jobs["seff 123"]["output"])
    assert cluster.queue() == []


def test_without_the_binds_lab_names_what_is_missing(cluster, site):
    done = cluster.sh(f"apptainer exec {SIF} lab run --workers 1")
    assert done.returncode == 2 and "bin/lab-apptainer" in done.stderr
    line = [line for line in done.stderr.splitlines() if line.startswith("lab run: error")]
    # The line names what to bind by hand instead: the commands, the configuration, munge.
    assert len(line) == 1 and all(piece in line[0] for piece in ("sbatch", "libslurm", "/etc/slurm", "/run/munge"))


# An image whose glibc (Debian 12: 2.36) is older than the site client's
# (the login node is Debian 13: 2.41), to show the glibc rule by a run.
OLDER_GLIBC_IMAGE = "debian:12.12-slim"


def test_a_client_newer_than_the_images_glibc_fails_and_lab_says_why(cluster, site, tmp_path):
    made = subprocess.run([str(ROOT / "containers" / "base-image.sh"), OLDER_GLIBC_IMAGE],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    binds = cluster.out("LAB_BINDS_ONLY=1 ./lab-apptainer").strip().split(",")
    mounts = []
    for bind in binds:  # the binds, copied out of the login node, mounted as Apptainer would
        source, _, dest = bind.partition(":")
        if source.startswith(("/run/munge", "/var/run/munge")):
            continue
        copy = tmp_path / source.strip("/").replace("/", "_")
        subprocess.run(["docker", "cp", "-L", f"{site['login']}:{source}", str(copy)], check=True,
                       capture_output=True)
        mounts += ["-v", f"{copy}:{dest or source}:ro"]
    done = subprocess.run(["docker", "run", "--rm", "--network", f"{PROJECT}_default", *mounts,
                           "--entrypoint", "/opt/site-slurm/bin/squeue", OLDER_GLIBC_IMAGE],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and re.search(r"GLIBC_2\.\d+' not found", done.stderr), done.stderr
    assert client_error(done.stderr).startswith("missing a glibc at least as new as the host's")
    # The same bound client in lab.sif (glibc 2.41) works: the rest of this file.
