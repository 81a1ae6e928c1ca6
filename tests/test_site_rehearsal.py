"""The site rehearsal: the compose cluster plays a real site for the lab image.

The login node is the site's login host (it has a Slurm client, munge and
the config). The Slurm-less lab image is started by Docker the way Apptainer
starts a container: read-only root, the learner's uid, the login node's
network (the compose network), the home folder, and only the binds that
`bin/lab-apptainer` computes on that host. `lab doctor` and `lab run` must
then work through the bound-in client, with the worker jobs started on the
compute nodes by the worker command lab writes for Apptainer. The compute
nodes have no Apptainer: a stand-in `apptainer` runs the command after the
image (their image is built on the same lab image)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from lab.diagnose import client_error
from tools.cluster import FOLDER_OWNER, PROJECT, ROOT, image

pytestmark = pytest.mark.cluster

LAB_IMAGE = image("lab")
STAND_IN = """#!/bin/sh
# apptainer exec [options] IMAGE COMMAND...: run COMMAND (compose's nodes have
# no apptainer), with Apptainer's --cleanenv and --env: nothing of the job's
# environment but HOME, the image's own (PATH, LANG, LAB_SITE) and what --env passes.
clean="" passed=""
while [ $# -gt 0 ]; do
    case $1 in
    --cleanenv) clean=1 ;;
    --env=*) passed=$(printf '%s' "${1#--env=}" | tr ',' ' ') ;;
    *.sif) shift; break ;;
    esac
    shift
done
[ -z "$clean" ] && exec "$@"
# shellcheck disable=SC2086  # one NAME=value a word
exec env -i HOME="$HOME" PATH=/opt/lab/venv/bin:/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 LAB_SITE=compose \
    $passed "$@"
"""


def login_container(cluster) -> str:
    return cluster.compose("ps", "-q", "login").stdout.strip()


@pytest.fixture(scope="module")
def site(cluster, tmp_path_factory):
    """The binds bin/lab-apptainer computes on the site's login host, made real."""
    here = tmp_path_factory.mktemp("site")
    script = (ROOT / "bin" / "lab-apptainer").read_text()
    cluster.out(f"cat > ~/lab-apptainer <<'EOF'\n{script}\nEOF\nchmod +x ~/lab-apptainer")
    cluster.out(f"cat > ~/apptainer <<'EOF'\n{STAND_IN}\nEOF\nchmod +x ~/apptainer")
    binds = cluster.out("LAB_BINDS_ONLY=1 ~/lab-apptainer").strip().split(",")
    login = login_container(cluster)
    mounts = []
    for bind in binds:
        source, _, dest = bind.partition(":")
        dest = dest or source
        if source.startswith("/run/munge") or source.startswith("/var/run/munge"):
            continue  # the socket comes with the login node's volumes
        copy = here / source.strip("/").replace("/", "_")
        subprocess.run(["docker", "cp", "-L", f"{login}:{source}", str(copy)], check=True, capture_output=True)
        mounts += ["-v", f"{copy}:{dest}:ro"]
    return {"binds": binds, "mounts": mounts, "login": login}


def apptainer_like(cluster, site, *command: str, timeout: float = 300,
                   image: str = LAB_IMAGE) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--user", f"{FOLDER_OWNER}:{FOLDER_OWNER}",
         "--network", f"{PROJECT}_default", "--volumes-from", site["login"], *site["mounts"],
         "-e", "HOME=/home/learner", "-w", "/home/learner", "-e", "APPTAINER_CONTAINER=/images/lab.sif",
         "-e", "PATH=/opt/site-slurm/bin:/opt/lab/venv/bin:/usr/local/bin:/usr/bin:/bin",
         "-e", "LAB_SITE=compose", "-e", "DASK_LAB__APPTAINER__COMMAND=/home/learner/apptainer",
         "--entrypoint", command[0], image, *command[1:]],  # apptainer exec runs the command itself
        capture_output=True, text=True, timeout=timeout)


def test_lab_apptainer_finds_what_the_sites_client_needs(site):
    binds = site["binds"]
    assert any(b.endswith(":/opt/site-slurm") for b in binds)
    assert {"/etc/slurm", "/etc/passwd", "/etc/group", "/run/munge"} <= set(binds)
    assert any("slurm" in b and not b.startswith("/etc") and ":" not in b for b in binds)  # PluginDir


def test_the_image_has_no_slurm_client_of_its_own(cluster):
    done = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", LAB_IMAGE, "-c",
                           "command -v sbatch squeue scontrol; ls /usr/lib/x86_64-linux-gnu/slurm-wlm"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and done.stdout == "" and "No such file" in done.stderr


def test_doctor_passes_through_the_bound_client(cluster, site):
    done = apptainer_like(cluster, site, "lab", "doctor", "--worker-timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[ok]") == 8 and "all checks passed" in done.stdout
    assert "[ok]   sbatch --test-only accepts the worker job (sbatch: Job " in done.stdout
    assert "[ok]   TLS: OpenSSL's error queue is cleared" in done.stdout
    assert cluster.queue() == []


def test_run_starts_its_workers_on_the_compute_nodes(cluster, site):
    done = apptainer_like(cluster, site, "lab", "run", "--workers", "2", "--size", "2000000",
                          "--json", "/home/learner/rehearsal.json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(cluster.out("cat ~/rehearsal.json"))
    assert result["backend"] == "slurm" and result["correct"] and result["workers_connected"] == 2
    # Each worker's own job and node, through --cleanenv (what --env passes).
    assert all(w["node"].startswith("compute-") and w["job"] in result["job_ids"] for w in result["workers"])
    script = apptainer_like(cluster, site, "lab", "run", "--workers", "1", "--size", "1000",
                            "--show-job-script").stdout
    assert "/home/learner/apptainer exec --cleanenv" in script and "/images/lab.sif python -m" in script
    assert cluster.queue() == []


def test_without_the_binds_lab_names_what_is_missing(cluster, site):
    bare = dict(site, mounts=[])
    done = apptainer_like(cluster, bare, "lab", "run", "--workers", "1")
    assert done.returncode == 2 and "bin/lab-apptainer" in done.stderr and done.stderr.count("\n") == 1
    # The line names what to bind by hand instead: the commands, the configuration, munge.
    assert all(piece in done.stderr for piece in ("sbatch", "libslurm", "/etc/slurm", "/run/munge"))


# An image whose glibc (Debian 12: 2.36) is older than the site client's
# (the login node is Debian 13: 2.41), to show the glibc rule by a run.
OLDER_GLIBC_IMAGE = "debian:12.12-slim"


def test_a_client_newer_than_the_images_glibc_fails_and_lab_says_why(cluster, site):
    made = subprocess.run([str(ROOT / "containers" / "base-image.sh"), OLDER_GLIBC_IMAGE],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    done = apptainer_like(cluster, site, "/opt/site-slurm/bin/squeue", timeout=60, image=OLDER_GLIBC_IMAGE)
    assert done.returncode != 0 and re.search(r"GLIBC_2\.\d+' not found", done.stderr), done.stderr
    assert client_error(done.stderr).startswith("missing a glibc at least as new as the host's")
    # The same bound client in the lab image (glibc 2.41) works: the rest of this file.
