"""lab.sif: `make sif` without Apptainer (containers/make-sif.sh -> sif-builder):
the SIF's descriptors are what Apptainer boots, its partition holds the lab
image's files and Apptainer's layout, and its root file system runs the lab
the way `apptainer exec` and `apptainer test` start commands. Then a real
Apptainer runs it, signs and verifies it, and builds lab.sif both other ways
(from the lab image, as make-sif.sh does where Apptainer is installed; from
containers/lab.def)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.cluster import VERSION, build_apptainer_image, image

ROOT = Path(__file__).resolve().parent.parent
BUILDER = f"dask-slurm-lab/sif-builder:{VERSION}"
LAB = f"dask-slurm-lab/lab:{VERSION}"
FROM_SIF = "dask-slurm-lab/lab-from-sif:test"

pytestmark = pytest.mark.docker


def sh(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


def in_builder(folder: Path, command: str) -> str:
    done = sh("docker", "run", "--rm", "--entrypoint", "sh", "-v", f"{folder}:/s", BUILDER, "-c", command)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", autouse=True)
def remove_the_imported_image():
    yield
    sh("docker", "rmi", "-f", FROM_SIF)


def test_the_sif_has_a_deffile_and_a_primary_squashfs_partition(sif):
    assert sif.read_bytes()[:31] == b"#!/usr/bin/env run-singularity\n"
    assert b"SIF_MAGIC" in sif.read_bytes()[:64]
    listing = in_builder(sif.parent, "siftool list /s/lab.sif")
    rows = [line for line in listing.splitlines() if line[:1].isdigit()]
    assert len(rows) == 2, listing
    # Both in group 1 (apptainer verify fails on an object outside the signed group).
    assert rows[0].split("|")[-1].strip() == "Def.FILE" and rows[0].split("|")[1].strip() == "1"
    # siftool marks the primary system partition (PrimSys, parttype 2) with a *.
    assert rows[1].split("|")[-1].strip() == "FS (Squashfs/*System/amd64)" and rows[1].split("|")[1].strip() == "1"
    assert in_builder(sif.parent, "siftool dump 1 /s/lab.sif") == (ROOT / "containers" / "lab.def").read_text()
    # The partition is a squashfs (magic hsqs), gzip-compressed.
    info = in_builder(sif.parent, "siftool dump 2 /s/lab.sif > /tmp/p && head -c 4 /tmp/p && echo"
                                  " && unsquashfs -s /tmp/p | grep -i compression")
    assert info.startswith("hsqs") and "gzip" in info


def test_the_partition_holds_the_lab_image_and_apptainers_layout(sif):
    listed = in_builder(sif.parent, "siftool dump 2 /s/lab.sif > /tmp/p && unsquashfs -lc -d '' /tmp/p")
    files = {line.strip().lstrip("/") for line in listed.splitlines() if line.strip()}
    container = sh("docker", "create", LAB).stdout.strip()
    try:
        exported = subprocess.run(f"docker export {container} | tar -t", shell=True, capture_output=True,
                                  text=True, check=True).stdout
    finally:
        sh("docker", "rm", "-f", container)
    image = {line.rstrip("/") for line in exported.splitlines() if line and not line.endswith("/")}
    image -= {".dockerenv"}
    assert image - files == set(), sorted(image - files)[:20]
    layout = {".singularity.d/env/01-base.sh", ".singularity.d/env/10-docker2singularity.sh",
              ".singularity.d/env/90-environment.sh", ".singularity.d/env/95-apps.sh",
              ".singularity.d/env/99-base.sh", ".singularity.d/env/99-runtimevars.sh",
              ".singularity.d/actions/exec", ".singularity.d/actions/run", ".singularity.d/actions/shell",
              ".singularity.d/actions/start", ".singularity.d/actions/test", ".singularity.d/runscript",
              ".singularity.d/startscript", ".singularity.d/test", ".singularity.d/runscript.help",
              ".singularity.d/labels.json", ".singularity.d/Singularity", ".exec", ".run", ".shell", ".test",
              "environment", "singularity", "etc/hosts", "etc/resolv.conf"}
    assert layout <= files, sorted(layout - files)


def test_the_root_file_system_runs_the_lab_as_apptainer_starts_it(sif, tmp_path):
    made = subprocess.run(
        f"docker run --rm --entrypoint sh -v {sif.parent}:/s {BUILDER} -c "
        f"'siftool dump 2 /s/lab.sif > /tmp/p && unsquashfs -q -d /tmp/r /tmp/p >/dev/null && tar -C /tmp/r -c .'"
        f" | docker import - {FROM_SIF}", shell=True, capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stderr
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    # No ENV in an imported image: the environment comes from the env scripts,
    # as in Apptainer. Read-only root, a uid with no passwd entry, home bound,
    # host network, /tmp from the host.
    apptainer_like = ["docker", "run", "--rm", "--read-only", "--user", "4321:4321", "--network", "host",
                      "--tmpfs", "/tmp", "-v", f"{home}:/home/user", "-e", "HOME=/home/user",
                      "-w", "/home/user", "-e", "APPTAINER_CONTAINER=/images/lab.sif"]
    run = sh(*apptainer_like, "--entrypoint", "/.singularity.d/actions/exec", FROM_SIF,
             "lab", "run", "--backend", "local", "--workers", "2", "--size", "200000", "--json", "r.json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"sum: {4 * 200000 * 199999 // 2} (correct)" in run.stdout and (home / "r.json").exists()
    test = sh(*apptainer_like, "--entrypoint", "/.singularity.d/actions/test", FROM_SIF)
    assert test.returncode == 0 and f"lab {VERSION}" in test.stdout and "(correct)" in test.stdout, test.stderr
    version = sh(*apptainer_like, "--entrypoint", "/.singularity.d/actions/run", FROM_SIF, "--version")
    assert version.stdout.strip() == f"lab {VERSION}", version.stdout + version.stderr


# --- a real Apptainer (Debian unstable's 1.4.5), running the lab.sif built above ---

# The Slurm image with Apptainer (containers/Dockerfile's slurm-apptainer),
# run as a plain container: no Slurm here, lab.sif alone.
APPTAINER = image("slurm-apptainer")
# What Apptainer needs of its container here: every capability but
# SYS_RESOURCE (the host lacks it, so --privileged is refused), no seccomp,
# AppArmor or masked /proc paths, FUSE (squashfuse for ordinary users), and
# loop devices (root mounts the squashfs on one, and builds).
APPTAINER_RUN = ["docker", "run", "--rm", "--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
                 "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                 "--security-opt", "systempaths=unconfined", "--device", "/dev/fuse",
                 "--device-cgroup-rule=b 7:* rmw", "--device-cgroup-rule=c 10:237 rmw", "--entrypoint", "sh"]


@pytest.fixture(scope="module")
def apptainer(sif):
    """Run a shell script next to a real Apptainer, lab.sif at /s/lab.sif (a copy:
    it may be signed), this repository at /repo (read-only), /out the test's folder."""
    done = build_apptainer_image()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    def run(script: str, out: Path | None = None) -> subprocess.CompletedProcess:
        prepare = "set -e; chmod 0666 /dev/fuse; mkdir /s; cp /built/lab.sif /s/; chmod a+r /s/lab.sif"
        folders = ["-v", f"{sif.parent}:/built:ro", "-v", f"{ROOT}:/repo:ro"] + (["-v", f"{out}:/out"] if out else [])
        return sh(*APPTAINER_RUN, *folders, APPTAINER, "-c", f"{prepare}\n{script}")
    return run


def test_a_real_apptainer_runs_the_sif_as_root_and_as_an_ordinary_user(apptainer):
    done = apptainer("apptainer --version\n"
                     "apptainer exec /s/lab.sif python -c 'import distributed, os; print(\"root\", os.getuid())'\n"
                     "su learner -c \"apptainer exec /s/lab.sif python -c 'import distributed, os; "
                     "print(\\\"user\\\", os.getuid())'\"")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["apptainer version 1.4.5", "root 0", "user 1000"], done.stdout


def test_apptainer_test_runs_the_labs_own_test(apptainer):
    """`apptainer test lab.sif`, the README's readiness check, runs the lab's %test (not "No test found")."""
    done = apptainer("su learner -c 'apptainer test /s/lab.sif'")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sum: " in done.stdout and "(correct)" in done.stdout


def test_a_signed_sif_verifies(apptainer):
    """Sites that accept signed images only: sign with a throwaway key, verify."""
    done = apptainer("export APPTAINER_KEYSDIR=/tmp/keys\n"
                     "apptainer key newpair --name lab-ci --email ci@example.invalid --comment throwaway "
                     "--password= --push=false >/dev/null\n"
                     "apptainer sign /s/lab.sif\n"
                     "apptainer verify /s/lab.sif")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verified signature(s) from image '/s/lab.sif'" in done.stdout + done.stderr


@pytest.mark.parametrize("options", ["--cleanenv", "--containall --cleanenv", "--no-home --writable-tmpfs"])
def test_the_study_runs_in_the_sif_under_apptainers_isolation(apptainer, options):
    done = apptainer(f"su learner -c 'cd /tmp && apptainer exec {options} /s/lab.sif "
                     "lab run --backend local --workers 2 --size 100000'")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workers: 2 requested, 2 connected" in done.stdout and "(correct)" in done.stdout


def test_the_site_wrapper_comes_out_of_the_sif_and_runs_lab_in_it(apptainer):
    """lab.sif is all a site needs: the wrapper comes out of the image, and
    runs lab in it with a real Apptainer (here without a Slurm client: a local run)."""
    done = apptainer("cd /tmp && apptainer exec /s/lab.sif cat /opt/lab/bin/lab-apptainer > lab-apptainer\n"
                     "chmod +x lab-apptainer && cp lab-apptainer /tmp/extracted\n"
                     "su learner -c 'cd /tmp && LAB_SIF=/s/lab.sif ./lab-apptainer lab run --backend local "
                     "--workers 1 --size 1000' && cat /tmp/extracted")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(correct)" in done.stdout
    assert done.stdout.endswith((ROOT / "bin" / "lab-apptainer").read_text())


HELP_LINE = "./lab-apptainer lab doctor"  # %help's way on a login node: through the wrapper
# Builds run as an ordinary user, as most Apptainer users build: fakeroot
# (a user namespace with the learner's /etc/subuid range). Root's build asks
# for every capability, CAP_SYS_RESOURCE too, which this host cannot give a
# container.
BUILD_AS_LEARNER = "cd /tmp &&"


def open_to_the_learner(folder: Path) -> None:
    folder.chmod(0o777)
    for path in folder.iterdir():
        path.chmod(0o644)


def test_run_help_says_how_a_login_node_runs_it(apptainer):
    done = apptainer("apptainer run-help /s/lab.sif")
    assert done.returncode == 0 and HELP_LINE in done.stdout, done.stdout + done.stderr
    assert "apptainer exec lab.sif lab run --workers" not in done.stdout  # fails without the binds


def test_make_sif_with_apptainer_installed_keeps_the_labs_test_and_help(apptainer, tmp_path):
    """make-sif.sh's way where Apptainer is installed (sif-from-image.sh, from
    `docker save` of the lab image): the same %test and %help as the container's way."""
    saved = sh("docker", "save", LAB, "-o", str(tmp_path / "lab-image.tar"))
    assert saved.returncode == 0, saved.stderr
    open_to_the_learner(tmp_path)
    done = apptainer(f"su learner -c '{BUILD_AS_LEARNER} /repo/containers/sif-from-image.sh /out/lab-image.tar"
                     " /out/from-image.sif >/dev/null && apptainer test /out/from-image.sif'"
                     "\napptainer run-help /out/from-image.sif", out=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(correct)" in done.stdout and HELP_LINE in done.stdout


def test_apptainer_builds_the_definition_file(apptainer, tmp_path):
    """`apptainer build lab.sif containers/lab.def`, as a site with Apptainer and
    a registry would, here from the pinned Debian image saved (no registry):
    %files land where the Dockerfile puts them, %post installs from the
    wheelhouse, and the image runs the lab as an ordinary user."""
    base = (ROOT / "containers" / "lab.def").read_text().split("\n")[1].removeprefix("From: ")
    saved = sh("docker", "save", base, "-o", str(tmp_path / "base.tar"))
    assert saved.returncode == 0, saved.stderr
    open_to_the_learner(tmp_path)
    done = apptainer(
        "sed '1,2c Bootstrap: docker-archive\\nFrom: /out/base.tar' /repo/containers/lab.def >/tmp/lab.def"
        f"\nsu learner -c '{BUILD_AS_LEARNER} cd /repo && apptainer build /out/from-def.sif /tmp/lab.def"
        " >/out/build.log 2>&1'"
        "\nsu learner -c 'cd /tmp && apptainer exec /out/from-def.sif lab run --backend local --workers 2"
        " --size 200000 --json /tmp/r.json && cat /tmp/r.json'"
        "\napptainer exec /out/from-def.sif sh -c 'ls /opt/lab/src /opt/lab/wheelhouse 2>&1; ls /opt/lab/bin'",
        out=tmp_path)
    log = (tmp_path / "build.log").read_text() if (tmp_path / "build.log").exists() else ""
    assert done.returncode == 0, log[-4000:] + done.stdout[-2000:] + done.stderr[-2000:]
    assert "(correct)" in log  # its %test ran at the end of the build
    assert f"sum: {4 * 200000 * 199999 // 2} (correct)" in done.stdout
    # The build's leftovers are gone; the wrapper is where the image says.
    assert "No such file" in done.stdout and done.stdout.rstrip().endswith("lab-apptainer")
