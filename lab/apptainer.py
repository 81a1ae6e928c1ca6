"""Running inside Apptainer: workers in the same image, the host's Slurm client bound in."""

from __future__ import annotations

import os
import shlex

from . import config

# What the Slurm client needs from the host inside the container; bin/lab-apptainer binds it.
CLIENT_BINDS = "the Slurm commands (sbatch, squeue, scancel, sacct, sinfo), their libslurm*.so, " \
               "/etc/slurm and the munge socket (/run/munge)"


def image() -> str | None:
    """The .sif this process runs in, if any."""
    return os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER") or None


def worker_python(sif: str) -> str:
    """The worker command that runs dask's worker in the same image."""
    command = shlex.split(str(config.lab("apptainer.command")))
    binds = config.lab("apptainer.binds") or []
    bind_flags = [f"--bind={bind}" for bind in binds]
    return shlex.join([*command, "exec", *bind_flags, sif, "python"])


def missing_client_hint() -> str:
    return (f"inside Apptainer the host's Slurm client must be bound in: run lab through "
            f"bin/lab-apptainer, or add --bind for {CLIENT_BINDS}")
