"""The Apptainer path, exercised with everything short of apptainer itself."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
from pathlib import Path

import dask.config
import pytest
from spython.main.parse.parsers import DockerParser, SingularityParser

from lab import config, spec
from lab.cli import build_parser, main
from lab.workers.slurm import worker_command
from tools.cluster import IMAGE_NAMES, VERSION

ROOT = Path(__file__).resolve().parent.parent
DEF = ROOT / "containers" / "lab.def"
DOCKERFILE = ROOT / "containers" / "lab.Dockerfile"


def load_make_def():
    spec = importlib.util.spec_from_file_location("make_def", ROOT / "containers" / "make_def.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def only(recipe: dict):
    (stage,) = recipe.values()
    return stage


def test_definition_is_the_dockerfile_converted():
    assert DEF.read_text() == load_make_def().render(), "containers/lab.def drifted: run `make def`"


def test_definition_and_dockerfile_agree():
    definition = only(SingularityParser(str(DEF)).recipe)
    dockerfile = only(DockerParser(str(DOCKERFILE)).recipe)
    assert definition.fromHeader == dockerfile.fromHeader and dockerfile.fromHeader.startswith("debian:")
    assert definition.environ == dockerfile.environ
    assert "PATH=/opt/lab/venv/bin:$PATH" in definition.environ
    # The same files, and the wheelhouse that Docker mounts for its install steps.
    # (Apptainer puts a source into a destination ending in /: none does.)
    mounts = DOCKERFILE.read_text().count("RUN --mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse")
    files = [f.split() for f in definition.files]
    assert mounts == 2 and [f for f in files if "wheelhouse" not in f] == \
        [[path.rstrip("/") for path in f] for f in dockerfile.files]
    assert not any(path.endswith("/") for f in files for path in f)
    # The wheelhouse outside /tmp, which is the build host's while %post runs.
    assert ["wheelhouse", "/opt/lab/wheelhouse"] in files and "/tmp/" not in DEF.read_text().split("%post")[1]
    install = "\n".join(definition.install)
    assert "\nrm -rf /opt/lab/wheelhouse\n" in install  # no image keeps it
    # One command a line: sh -e stops %post at any failure (not so inside `a && b`).
    assert "&&" not in DEF.read_text().split("%post")[1].split("%environment")[0]
    python = re.search(r"python3=\S+", DOCKERFILE.read_text()).group()
    assert install.count(python) == 1  # the same pinned Python
    assert "venv-install make /opt/lab/venv /opt/lab/requirements.lock /opt/lab/wheelhouse" in install
    assert "venv-install compile /opt/lab/venv" in install  # its byte code as Docker's
    assert definition.cmd == 'exec lab "$@"' and dockerfile.entrypoint == ["lab"]


def test_both_carry_the_lock_hash():
    digest = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()
    assert f'lock-sha256="{digest}"' in DOCKERFILE.read_text(), "run `make lock`"
    assert f"org.dask-slurm-lab.lock-sha256 {digest}" in DEF.read_text()


def test_definition_has_the_apptainer_sections():
    text = DEF.read_text()
    base = only(DockerParser(str(DOCKERFILE)).recipe).fromHeader
    assert text.startswith(f"Bootstrap: docker\nFrom: {base}\n")
    for section in ("%files", "%post", "%environment", "%runscript", "%labels", "%help", "%test"):
        assert f"\n{section}\n" in text
    assert "lab run --backend local" in text.split("%test")[1]


def slurm_options(monkeypatch, sif: str | None, *flags: str) -> dict:
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    if sif:
        monkeypatch.setenv("APPTAINER_CONTAINER", sif)
    else:
        monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.setattr("lab.slurm.client_problem", lambda: None)
    args = build_parser().parse_args(["run", "--backend", "slurm", *flags])
    return dict(spec.resolve("run", vars(args)).run.slurm)


def test_inside_apptainer_workers_run_in_the_same_image(monkeypatch):
    from dask_jobqueue import SLURMCluster

    with dask.config.set({"lab.apptainer.command": "/opt/apptainer/bin/apptainer"}):
        options = slurm_options(monkeypatch, "/project/me/lab.sif")
    options["scheduler_options"] = {"host": "127.0.0.1", "dashboard_address": ":0"}
    with dask.config.set({"jobqueue.slurm.interface": None}), SLURMCluster(**options) as cluster:
        script = cluster.job_script()
    # The runtime by its host path, none of the login container's Apptainer
    # settings, a clean environment, the node's scratch folder bound in.
    line = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    assert line.startswith("env -u APPTAINER_BIND -u SINGULARITY_BIND ")
    assert "-u APPTAINER_CONTAINER" in line
    assert ' /opt/apptainer/bin/apptainer exec --cleanenv --env="SLURM_JOB_ID=${SLURM_JOB_ID:-},' \
        'SLURMD_NODENAME=${SLURMD_NODENAME:-},SLURM_TMPDIR=${SLURM_TMPDIR:-/tmp}" ' \
        '--bind="${SLURM_TMPDIR:-/tmp}" /project/me/lab.sif ' \
        'python -m distributed.cli.dask_worker' in line
    # A worker job that exits 127 is explained with this command, not lab's own python.
    assert worker_command(script) == options["python"]


def test_under_apptainer_the_lessons_own_scripts_start_workers_in_the_image(monkeypatch):
    """What the image's lab-image.pth runs at each python's start: dask-jobqueue's
    default worker python becomes the image through the runtime bin/lab-apptainer
    names, so SLURMCluster(cores=1, memory=...) as the lesson writes it works."""
    from dask_jobqueue import SLURMCluster

    from lab import apptainer

    monkeypatch.delenv("DASK_JOBQUEUE__SLURM__PYTHON", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    apptainer.name_workers_python()
    assert "DASK_JOBQUEUE__SLURM__PYTHON" not in os.environ  # not in an image: nothing changes
    monkeypatch.setenv("APPTAINER_CONTAINER", "/home/me/lab.sif")
    monkeypatch.setenv("DASK_LAB__APPTAINER__COMMAND", "/usr/bin/apptainer")
    apptainer.name_workers_python()
    python = os.environ["DASK_JOBQUEUE__SLURM__PYTHON"]
    assert python == apptainer.worker_python("/home/me/lab.sif", "/usr/bin/apptainer", [])
    dask.config.refresh()
    with dask.config.set({"jobqueue.slurm.interface": None}), \
            SLURMCluster(cores=1, memory="256M", scheduler_options={"host": "127.0.0.1", "dashboard_address": ":0"}) \
            as cluster:
        script = cluster.job_script()
    assert f"{python} -m distributed.cli.dask_worker" in script
    # A python the user set stays theirs.
    monkeypatch.setenv("DASK_JOBQUEUE__SLURM__PYTHON", "/my/python")
    apptainer.name_workers_python()
    assert os.environ["DASK_JOBQUEUE__SLURM__PYTHON"] == "/my/python"


def test_the_worker_python_the_image_named_at_start_gets_the_sites_binds(monkeypatch):
    """In the image, lab-image.pth names the workers' python (with no binds:
    no site is read yet) before lab loads the site profile: lab's own runs
    still bind the site's file systems into the workers' image."""
    from lab import apptainer

    named = apptainer.worker_python("/x/lab.sif", "/usr/bin/apptainer", [])
    monkeypatch.setenv("DASK_LAB__APPTAINER__COMMAND", "/usr/bin/apptainer")
    with dask.config.set({"jobqueue.slurm.python": named, "lab.apptainer.command": "/usr/bin/apptainer",
                          "lab.apptainer.binds": ["/project", "/scratch"]}):
        options = slurm_options(monkeypatch, "/x/lab.sif")
    assert options["python"].endswith(' --bind="${SLURM_TMPDIR:-/tmp}" --bind=/project --bind=/scratch /x/lab.sif '
                                      'python')


def test_apptainer_worker_command_is_configurable(monkeypatch):
    with dask.config.set({"lab.apptainer.command": "singularity", "lab.apptainer.binds": ["/scratch"]}):
        options = slurm_options(monkeypatch, "/x/lab.sif")
    assert ' singularity exec --cleanenv --env=' in options["python"]
    assert options["python"].endswith(' --bind="${SLURM_TMPDIR:-/tmp}" --bind=/scratch /x/lab.sif python')
    # An explicit python (flag or jobqueue.slurm.python) wins.
    assert slurm_options(monkeypatch, "/x/lab.sif", "--python", "/usr/bin/python3")["python"] == "/usr/bin/python3"
    assert "python" not in slurm_options(monkeypatch, None)


def test_slurm_backend_in_apptainer_without_client_names_the_binds(monkeypatch, capsys):
    monkeypatch.setenv("APPTAINER_CONTAINER", "/x/lab.sif")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["run", "--backend", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "bin/lab-apptainer" in err and "/etc/slurm" in err and "/run/munge" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("site, key, value", [
    ("compose", "jobqueue.slurm.interface", "eth0"),
    ("magic-castle", "jobqueue.slurm.local-directory", "$SLURM_TMPDIR"),
])
def test_site_profiles(site, key, value):
    with dask.config.set({}):  # restored afterwards
        config.use_site(site)
        assert dask.config.get(key) == value


def test_site_file_and_env_precedence(tmp_path, monkeypatch):
    site = tmp_path / "mysite.yaml"
    site.write_text("jobqueue:\n  slurm:\n    queue: short\n    account: def-a\n")
    monkeypatch.setenv("DASK_JOBQUEUE__SLURM__ACCOUNT", "def-env")
    with dask.config.set({}):
        config.use_site(str(site))
        assert config.slurm("queue") == "short" and config.slurm("account") == "def-env"


@pytest.mark.parametrize("site, says", [("nowhere", "unknown site 'nowhere'"), ("", "unknown site ''")])
def test_unknown_site_is_bad_input(site, says, capsys):
    assert main(["--site", site, "run"]) == 2
    err = capsys.readouterr().err
    assert says in err and "compose, magic-castle" in err and err.count("\n") == 1


SSL = Path("/usr/lib/x86_64-linux-gnu/libssl.so.3")  # a library that loads another: libcrypto


@pytest.mark.skipif(not SSL.exists(), reason="needs Debian's libssl3 on amd64")
def test_lab_apptainer_brings_what_the_hosts_slurm_client_needs(tmp_path):
    """The commands (from anywhere on PATH), the libraries they and every
    plugin load (a plugin's own library included, glibc's not), the plugin
    folder at its path, the configuration, munge, passwd and group."""
    site = tmp_path / "opt-slurm"
    (site / "bin").mkdir(parents=True)
    for cmd in ("sbatch", "squeue"):  # real dynamic binaries, at a path Apptainer's PATH lacks
        (site / "bin" / cmd).symlink_to("/bin/true")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "auth_munge.so").write_bytes(SSL.read_bytes())  # stands for a plugin that loads libmunge
    (site / "bin" / "scontrol").write_text(f"#!/bin/sh\necho 'PluginDir               = {plugins}'\n")
    (site / "bin" / "scontrol").chmod(0o755)
    cache = tmp_path / "cache"
    env = dict(os.environ, PATH=f"{site / 'bin'}:/usr/bin:/bin", LAB_BINDS_ONLY="1", LAB_SITE_SLURM=str(cache))
    cache.mkdir()
    (cache / "mine.txt").write_text("the user's own file, beside the lab's")
    out = subprocess.run([ROOT / "bin" / "lab-apptainer"], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().split(",")
    (folder,) = cache.glob("site-slurm-*")
    assert f"{folder}:/opt/site-slurm" in out and str(plugins) in out
    assert {"/etc/passwd", "/etc/group"} <= set(out)
    wrapper = (folder / "bin" / "sbatch").read_text()
    assert "LD_LIBRARY_PATH=/opt/site-slurm/lib" in wrapper and "exec /opt/site-slurm/libexec/sbatch" in wrapper
    assert os.access(folder / "bin" / "sbatch", os.X_OK) and (folder / "libexec" / "squeue").exists()
    libs = {p.name for p in (folder / "lib").iterdir()}
    assert "libcrypto.so.3" in libs  # loaded by the plugin, not by the commands
    assert not libs & {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"}  # the image's glibc is used
    # The next call reuses that folder as it is (a running lab keeps its binds),
    # leaves nothing half-made, and touches nothing it did not make.
    made = folder.stat().st_ino, (folder / "bin" / "sbatch").stat().st_mtime_ns
    again = subprocess.run([ROOT / "bin" / "lab-apptainer"], env=env, capture_output=True, text=True, check=True)
    assert f"{folder}:/opt/site-slurm" in again.stdout
    assert (folder.stat().st_ino, (folder / "bin" / "sbatch").stat().st_mtime_ns) == made
    assert sorted(p.name for p in cache.iterdir()) == sorted(["mine.txt", folder.name])
    # A changed client (another sbatch) gets a folder of its own beside it.
    (site / "bin" / "sbatch").unlink()
    (site / "bin" / "sbatch").symlink_to("/bin/false")
    subprocess.run([ROOT / "bin" / "lab-apptainer"], env=env, capture_output=True, text=True, check=True)
    assert len(list(cache.glob("site-slurm-*"))) == 2 and folder.exists()


def test_lab_apptainer_works_when_the_controller_does_not_answer(tmp_path):
    """scontrol fails (no controller, as in a container with a client but no
    cluster): the usual plugin folders serve, and the wrapper goes on."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").symlink_to("/bin/true")
    (bindir / "scontrol").write_text("#!/bin/sh\necho 'slurm_load_ctl_conf error: Unable to contact' >&2; exit 1\n")
    (bindir / "scontrol").chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin", LAB_BINDS_ONLY="1", LAB_SITE_SLURM=str(tmp_path / "c"))
    done = subprocess.run([ROOT / "bin" / "lab-apptainer"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert ":/opt/site-slurm" in done.stdout and "/etc/passwd" in done.stdout


def test_lab_apptainer_binds_passwd_with_the_directory_user_and_slurm_user(tmp_path):
    """A learner from the site's directory (LDAP, SSSD) is in no /etc/passwd:
    the bound passwd and group are the image's, plus the running user's and
    SlurmUser's entries as the host's lookup (getent) gives them."""
    uid, gid = os.getuid(), os.getgid()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").symlink_to("/bin/true")
    stand_ins = {
        "scontrol": "echo 'SlurmUser               = slurm(64030)'",
        # the image's own files, as `apptainer exec lab.sif cat` shows them
        "apptainer": 'echo "$*" >>"$CALLS"; case "$*" in *passwd) printf "root:x:0:0::/root:/bin/bash\\n'
                     'nobody:x:65534:65534::/:/bin/false\\ndirlearner:x:1:1:stale:/:/bin/sh\\n" ;; '
                     '*group) printf "root:x:0:\\nnogroup:x:65534:\\n" ;; esac',
        "getent": f'for key in "${{@:2}}"; do case "$1 $key" in "passwd {uid}") '
                  f'echo "dirlearner:*:{uid}:{gid}:Dir Learner:/home/dirlearner:/bin/bash" ;; '
                  # SlurmUser's group is its passwd entry's gid, not its uid
                  '"passwd slurm") echo "slurm:x:64030:64031::/nonexistent:/usr/sbin/nologin" ;; '
                  f'"group {gid}") echo "learners:*:{gid}:" ;; "group 64031") echo "slurm:x:64031:" ;; esac; done',
    }
    for name, body in stand_ins.items():
        (bindir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bindir / name).chmod(0o755)
    (tmp_path / "lab.sif").write_bytes(b"SIF")
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin", LAB_BINDS_ONLY="1", LAB_SIF=str(tmp_path / "lab.sif"),
               LAB_SITE_SLURM=str(tmp_path / "cache"), CALLS=str(tmp_path / "calls"))
    for _ in range(2):  # the image is read once
        binds = subprocess.run([ROOT / "bin" / "lab-apptainer"], env=env, capture_output=True, text=True,
                               check=True).stdout.strip().split(",")
    files = {dest: Path(source) for source, _, dest in (b.partition(":") for b in binds) if dest.startswith("/etc/")}
    assert set(files) == {"/etc/passwd", "/etc/group"}
    assert files["/etc/passwd"].read_text().splitlines() == [
        "root:x:0:0::/root:/bin/bash", "nobody:x:65534:65534::/:/bin/false",
        f"dirlearner:*:{uid}:{gid}:Dir Learner:/home/dirlearner:/bin/bash",
        "slurm:x:64030:64031::/nonexistent:/usr/sbin/nologin"]
    assert files["/etc/group"].read_text().splitlines() == [
        "root:x:0:", "nogroup:x:65534:", f"learners:*:{gid}:", "slurm:x:64031:"]
    assert (tmp_path / "calls").read_text().count("cat /etc/passwd") == 1


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_lab_apptainer_runs_lab_in_the_image_for_apptainer_and_singularityce(tmp_path, runtime):
    """The runtime gets the image, the binds and lab's arguments; the site's
    commands lead PATH inside and worker jobs call this same runtime by its
    absolute path, for Apptainer (APPTAINERENV_*) and SingularityCE (SINGULARITYENV_*)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / runtime).write_text('#!/bin/sh\necho "args: $*"; env | grep ENV_ | sort\n')
    (bindir / runtime).chmod(0o755)
    (tmp_path / "lab.sif").write_bytes(b"SIF")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "LAB_SIF": str(tmp_path / "lab.sif")}
    out = subprocess.run([ROOT / "bin" / "lab-apptainer", "lab", "run", "--workers", "4"], env=env,
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert re.search(rf"^args: exec --bind \S+ {tmp_path}/lab.sif lab run --workers 4$", out, re.M), out
    # Any command of the image: the lesson's own script.
    out = subprocess.run([ROOT / "bin" / "lab-apptainer", "python", "compute-distributed.py"], env=env,
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert re.search(rf"^args: exec --bind \S+ {tmp_path}/lab.sif python compute-distributed.py$", out, re.M), out
    for prefix in ("APPTAINERENV", "SINGULARITYENV"):
        assert f"{prefix}_PREPEND_PATH=/opt/site-slurm/bin" in out
        assert f"{prefix}_DASK_LAB__APPTAINER__COMMAND={bindir / runtime}" in out


def test_lab_apptainer_says_what_is_missing(tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin", APPTAINER="")
    done = subprocess.run([ROOT / "bin" / "lab-apptainer", "lab", "run"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "apptainer is not installed" in done.stderr
    done = subprocess.run([ROOT / "bin" / "lab-apptainer"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("usage: lab-apptainer COMMAND") \
        and done.stderr.count("\n") == 1


def test_the_images_tag_is_the_labs_version_everywhere():
    """lab/__init__.py names the version (pyproject.toml, make and make-sif.sh
    read it); compose.yaml's defaults, for docker compose run by hand, agree;
    no other file names it but the measured ones (README tables are written
    from bench/results)."""
    assert re.findall(r'^__version__ = "(.*)"', (ROOT / "lab" / "__init__.py").read_text(), re.M) == [VERSION]
    assert 'version = { attr = "lab.__version__" }' in (ROOT / "pyproject.toml").read_text()
    make = subprocess.run(["make", "-s", "-p", "-n", "help"], cwd=ROOT, capture_output=True, text=True).stdout
    assert f"LAB_VERSION := {VERSION}\n" in make
    compose = (ROOT / "compose.yaml").read_text()
    assert re.findall(r"\$\{LAB_VERSION:-([^}]*)\}", compose) == [VERSION] * len(IMAGE_NAMES)  # one per image
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    named = [path for path in tracked.split() if path not in ("lab/__init__.py", "compose.yaml")
             and not path.startswith(("bench/results", "docs/")) and (ROOT / path).is_file()
             and path != "README.md"
             and re.search(rf"dask-slurm-lab/\w+:{re.escape(VERSION)}|version.*\b{re.escape(VERSION)}\b",
                           (ROOT / path).read_text(errors="replace"))]
    assert named == []
