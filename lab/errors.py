"""The lab's one error type. Every expected failure is a LabError: `lab`
prints its message as one line and exits with its status, never a traceback."""

from __future__ import annotations


class LabError(Exception):
    """An expected failure; `status` is the exit status (1: the run failed)."""

    status = 1


class BadInput(LabError, ValueError):
    """Input the lab refuses before anything is started or submitted."""

    status = 2
