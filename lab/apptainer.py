"""Running inside Apptainer: workers in the same image, the host's Slurm client bound in."""

from __future__ import annotations

import os
import shlex


def image() -> str | None:
    """The .sif this process runs in, if any."""
    return os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER") or None


# What the login node's container passes on to jobs by the environment that
# would confuse the worker's own `apptainer exec` (its binds, its image).
INHERITED = ("APPTAINER_BIND", "SINGULARITY_BIND", "APPTAINER_BINDPATH", "SINGULARITY_BINDPATH",
             "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "APPTAINER_NAME", "SINGULARITY_NAME")


def worker_python(sif: str, command: str, binds: list[str]) -> str:
    """The worker command that runs dask's worker in the same image: the
    runtime by its absolute path on the host (bin/lab-apptainer passes it as
    lab.apptainer.command, `command`), none of the login container's Apptainer settings,
    a clean environment but for the job's own (PASSED), and its own binds: the node's scratch folder
    ($SLURM_TMPDIR, where sites keep worker space) and `binds` (lab.apptainer.binds).
    It is written into the job script, so the shell there expands $SLURM_TMPDIR."""
    runtime = shlex.split(command)
    unset = [f"-u {name}" for name in INHERITED]
    bind_flags = " ".join(shlex.quote(f"--bind={bind}") for bind in binds)
    return " ".join(["env", *unset, shlex.join(runtime), "exec", "--cleanenv", f'--env="{PASSED}"',
                     '--bind="${SLURM_TMPDIR:-/tmp}"', *([bind_flags] if bind_flags else []),
                     shlex.quote(sif), "python"])


def name_workers_python() -> None:
    """In the image under Apptainer, a SLURMCluster's default worker python
    (jobqueue.slurm.python) is this image through the same runtime, so the
    lesson's own scripts (no python given) start workers that exist on the
    compute nodes; the image's python path alone exists nowhere there. Every
    Python of the image runs this at start (its lab-image.pth); a python set
    by the user, in the environment, stays."""
    sif = image()
    if sif and "DASK_JOBQUEUE__SLURM__PYTHON" not in os.environ:
        # bin/lab-apptainer passes the runtime's absolute path; else the one on PATH (lab.yaml's default).
        runtime = os.environ.get("DASK_LAB__APPTAINER__COMMAND") or "apptainer"
        os.environ["DASK_JOBQUEUE__SLURM__PYTHON"] = worker_python(sif, runtime, [])


# What --cleanenv would drop that a worker needs: its job and node (where it
# ran, in the run's table) and its scratch folder. Expanded by the job script.
PASSED = "SLURM_JOB_ID=${SLURM_JOB_ID:-},SLURMD_NODENAME=${SLURMD_NODENAME:-},SLURM_TMPDIR=${SLURM_TMPDIR:-/tmp}"

