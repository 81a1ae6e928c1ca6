"""Who computes a run: one Workers interface, one implementation per kind of
scheduler, each in its own module. Every command starts workers only through
`open_workers(spec)`, so every scheduler is started, warmed, timed and closed
the same way:

- inprocess.InProcess: dask's synchronous, threads and processes schedulers,
  on a pool started and warmed before the clock (as distributed workers are);
- distributed.LocalWorkers: a LocalCluster of single-threaded worker processes;
- slurm.SlurmWorkers: dask-jobqueue's SLURMCluster, one worker job per
  worker; it says why jobs pend or ended while waiting, and cancels its jobs
  on any exit.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

from ..results import Placement
from ..spec import RunSpec


@dataclass(frozen=True)
class Waited:
    """How waiting for the workers went: how many connected, the seconds until
    every worker job was submitted, and why jobs ended ("" when none did)."""

    connected: int
    submit_seconds: float
    ended: str = ""


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (containers)
        return str(os.getuid())


def where() -> dict:
    """Runs on each worker: its Placement's fields (a dict: the worker's answer
    travels by pickle, and the client may lack nothing)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
    except OSError:
        boot = socket.gethostname()
    return {
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "job": os.environ.get("SLURM_JOB_ID", ""),
        "user": user(),
        "boot": boot,
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_ids": sorted(os.sched_getaffinity(0)),
    }


def warm() -> None:
    """Runs on every worker before the clock starts: the imports a task needs
    (lab.graph, NumPy), so the timed compute is the compute alone."""
    import lab.graph  # noqa: F401


class Workers:
    """The workers of one run. Use as a context manager (open_workers): they
    are closed, and any Slurm jobs cancelled, on every exit, Ctrl-C included."""

    cores_per_worker = 1

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.lost: set[str] = set()  # workers (by address) lost during a compute

    def describe(self, job_script: bool = False) -> list[str]:
        """What to tell the user before the run: a dashboard's ssh tunnel, and
        with `job_script` the worker job script (worker jobs only)."""
        return []

    def unreached(self) -> str:
        """Why no worker connected though they run ("": no such case)."""
        return ""

    def scale(self, count: int) -> None:
        """Ask for `count` workers."""
        raise NotImplementedError

    def wait(self, count: int, timeout: float, say) -> Waited:
        """Until `count` are connected or `timeout` passes; says why not."""
        raise NotImplementedError

    def placements(self) -> dict[str, Placement]:
        """Each connected worker (by address) and where it runs."""
        raise NotImplementedError

    def warm(self) -> None:
        """The imports a task needs, on every worker, before the clock starts."""

    def compute(self, graph) -> int:
        """The graph's result, computed on these workers."""
        raise NotImplementedError

    @property
    def job_ids(self) -> list[str]:
        """The Slurm jobs these workers submitted (none but SlurmWorkers')."""
        return []

    def leftover(self) -> list[str]:
        """After close: what is still running of them (Slurm jobs still queued)."""
        return []

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_workers(spec: RunSpec) -> Workers:
    """The run's Workers (none started yet: scale them); a context manager
    that closes them on any exit."""
    kind: type[Workers]
    if spec.scheduler == "slurm":
        from .slurm import SlurmWorkers as kind
    elif spec.scheduler == "local":
        from .distributed import LocalWorkers as kind
    else:
        from .inprocess import InProcess as kind
    return kind(spec)
