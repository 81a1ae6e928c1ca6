"""The lab's errors, in one place. Every expected failure is a LabError: `lab`
prints its message as one line and exits with its status, never a traceback."""

from __future__ import annotations


class LabError(Exception):
    """An expected failure; `status` is the exit status (1: the run failed)."""

    status = 1


class BadInput(LabError, ValueError):
    """Input the lab refuses before anything is started or submitted."""

    status = 2


class UnknownSite(BadInput):
    """A --site / LAB_SITE that names no shipped profile and no YAML file."""


class SlurmError(LabError):
    """A Slurm command is missing, failed or timed out."""


class NoWorkers(LabError):
    """No worker connected before the timeout."""


class RunFailed(LabError):
    """The compute could not finish: the message says why and what to change."""


class WrongSum(LabError):
    """The study computed a sum that differs from the closed form."""
