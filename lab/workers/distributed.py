"""Workers of a dask.distributed cluster: the shared part (a client, waiting,
computing with lost workers rescheduled, TLS), and LocalCluster's workers."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ..diagnose import OVER_MEMORY
from ..errors import RunFailed
from ..results import Placement
from ..spec import RunSpec
from . import Waited, Workers, user, warm, where

# Seconds with no worker at all before a run gives up on its compute.
NO_WORKER_GRACE = 20


def security(spec: RunSpec):
    """Temporary TLS credentials for one run (lab.tls), or None."""
    if not spec.tls:
        return None
    from distributed.security import Security

    from .. import openssl_queue

    openssl_queue.warn_if_off()
    return Security.temporary()


def private_folder(path: str) -> str:
    """A folder only its owner may enter (the worker jobs' copies of a run's
    credentials go there, in a folder the nodes share)."""
    folder = Path(os.path.expanduser(path))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return str(folder)


class DaskWorkers(Workers):
    """Workers of a dask.distributed cluster, with a client to it."""

    def __init__(self, spec: RunSpec, cluster):
        super().__init__(spec)
        from dask.distributed import Client

        self.cluster = cluster
        try:
            self.client = Client(cluster)
        except BaseException:
            self.close_cluster()
            raise

    def describe(self, job_script: bool = False) -> list[str]:
        """How to reach a dashboard that listens on this machine's loopback only."""
        if not self.spec.dashboard.startswith(("127.0.0.1:", "localhost:")):
            return []
        link = self.cluster.dashboard_link
        port = link.split(":")[2].split("/")[0]
        return [f"dashboard: {link} (on this machine; from yours: ssh -L {port}:127.0.0.1:{port} "
                f"{user()}@{socket.getfqdn()})"]

    def scale(self, count: int) -> None:
        self.cluster.scale(count)

    def connected(self) -> int:
        return len(self.client.nthreads())

    def wait(self, count: int, timeout: float, say) -> Waited:
        start = time.monotonic()
        while self.connected() < count and time.monotonic() - start < timeout:
            time.sleep(0.05)
        return Waited(connected=self.connected(), submit_seconds=0.0)

    def placements(self) -> dict[str, Placement]:
        answers = self.client.run(where, on_error="ignore")  # a worker may die meanwhile
        return {address: Placement(**fields) for address, fields in answers.items() if isinstance(fields, dict)}

    def warm(self) -> None:
        self.client.run(warm, on_error="ignore")

    def compute(self, graph) -> int:
        """Compute the graph; dask reschedules the parts of a lost worker, and a
        run whose workers are all gone fails with the reason instead of hanging."""
        from distributed import wait
        from distributed.scheduler import KilledWorker

        before = set(self.client.nthreads())
        future = self.client.compute(graph)
        last_worker = time.monotonic()
        try:
            while True:
                try:  # back the moment the result is in: the clock is the compute's alone
                    wait(future, timeout=1)
                    break
                except TimeoutError:
                    pass
                if self.client.nthreads():
                    last_worker = time.monotonic()
                elif time.monotonic() - last_worker > NO_WORKER_GRACE:
                    raise RunFailed(self.explain_lost(killed=self.restarted_for_memory()))
            total = future.result()
        except KilledWorker:
            raise RunFailed(self.explain_lost(killed=True)) from None
        finally:
            future.release()
        self.lost |= before - set(self.client.nthreads())
        return total

    def restarted_for_memory(self) -> bool:
        """Did a nanny restart its worker for going over the memory limit?"""
        try:
            return bool(self.client.get_events("worker-restart-memory"))
        except Exception:  # the scheduler is gone too: we cannot tell
            return False

    def explain_lost(self, killed: bool) -> str:
        if killed:
            return f"{OVER_MEMORY} and were restarted until none was left: give them more memory"
        return "all workers were lost; see the worker logs"

    def close_cluster(self) -> None:
        self.cluster.close()

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.close_cluster()


class LocalWorkers(DaskWorkers):
    """A LocalCluster: single-threaded worker processes on this machine."""

    def __init__(self, spec: RunSpec):
        from dask.distributed import LocalCluster

        super().__init__(spec, LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                                            dashboard_address=spec.dashboard, security=security(spec)))
