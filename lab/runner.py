"""Run the study once: start workers, wait for them, time the compute, clean up."""

from __future__ import annotations

import getpass
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from dask.distributed import Client, LocalCluster

from . import config, slurm
from .study import build_graph, expected_sum


@dataclass
class RunResult:
    backend: str
    workers_requested: int
    workers_connected: int
    size: int
    parts: int
    total: int
    expected: int
    correct: bool
    compute_seconds: float
    startup_seconds: float
    wall_seconds: float
    workers: list[dict] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    leftover_jobs: list[str] = field(default_factory=list)
    kernel: str = "python"
    cores_available: int = 0
    workers_lost: list[dict] = field(default_factory=list)
    phases: dict = field(default_factory=dict)  # seconds: submit, wait, compute, teardown...

    def to_dict(self) -> dict:
        return asdict(self)


class NoWorkers(RuntimeError):
    """No worker connected before the timeout."""


class RunFailed(RuntimeError):
    """The compute could not finish: the message says why and what to change."""


# Seconds with no worker at all before a run gives up on its compute.
NO_WORKER_GRACE = 20


def restarted_for_memory(client) -> bool:
    """Did a nanny restart its worker for going over the memory limit?"""
    try:
        return bool(client.get_events("worker-restart-memory"))
    except Exception:  # the scheduler is gone too: we cannot tell
        return False


def explain_lost(job_ids: list[str], options: dict, killed: bool) -> str:
    """Why the workers went away, from accounting, and which limit to raise."""
    states: dict[str, list[str]] = {}
    try:
        for row in slurm.accounting(job_ids, ["JobID", "State"], "-X"):
            states.setdefault(row["State"].split()[0], []).append(row["JobID"])
    except slurm.SlurmError:
        pass
    if "TIMEOUT" in states:
        return (f"worker job(s) {', '.join(states['TIMEOUT'])} hit their walltime limit "
                f"({options.get('walltime')}): raise it with --walltime or jobqueue.slurm.walltime")
    if "OUT_OF_MEMORY" in states:
        return (f"worker job(s) {', '.join(states['OUT_OF_MEMORY'])} ran out of memory "
                f"({options.get('memory')}): raise it with --memory or jobqueue.slurm.memory")
    if killed:
        memory = options.get("memory") or "their memory limit"
        return (f"workers went over their memory limit ({memory}) and were restarted until "
                f"none was left: raise it with --memory or jobqueue.slurm.memory")
    seen = ", ".join(f"{state}: {' '.join(jobs)}" for state, jobs in sorted(states.items()))
    return f"all workers were lost{f' ({seen})' if seen else ''}; see squeue, sacct and the worker logs"


def compute_watched(client, cluster, graph, options: dict) -> tuple[int, set[str]]:
    """Compute the graph; dask reschedules the parts of a lost worker, and a
    run whose workers are all gone fails with the reason instead of hanging."""
    from distributed.scheduler import KilledWorker

    before = set(client.nthreads())
    future = client.compute(graph)
    last_worker = time.monotonic()
    try:
        while not future.done():
            if client.nthreads():
                last_worker = time.monotonic()
            elif time.monotonic() - last_worker > NO_WORKER_GRACE:
                raise RunFailed(explain_lost(_slurm_ids(cluster), options,
                                             killed=restarted_for_memory(client)))
            time.sleep(0.1)
        total = future.result()
    except KilledWorker:
        raise RunFailed(explain_lost(_slurm_ids(cluster), options, killed=True)) from None
    finally:
        future.release()
    return total, before - set(client.nthreads())


def _slurm_ids(cluster) -> list[str]:
    return sorted(getattr(cluster, "lab_submitted", set()) | set(_slurm_job_ids(cluster)))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (containers)
        return str(os.getuid())


def _where() -> dict:
    """Runs on each worker: where it is, whose it is, and which machine's cores
    it shares (containers on one host share the kernel's boot id)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
    except OSError:
        boot = socket.gethostname()
    return {
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
        "job": os.environ.get("SLURM_JOB_ID", ""),
        "user": _user(),
        "boot": boot,
        "cpus": len(os.sched_getaffinity(0)),
    }


def cores_available(workers: list[dict], cores_per_worker: int = 1) -> int:
    """CPU cores the workers really have: per machine (boot id) the cores one
    worker sees, summed over machines, and no more than the workers asked for."""
    per_machine: dict[str, int] = {}
    for worker in workers:
        per_machine[worker["boot"]] = max(per_machine.get(worker["boot"], 0), worker["cpus"])
    return min(sum(per_machine.values()), len(workers) * cores_per_worker)


def _slurm_job_ids(cluster) -> list[str]:
    """Slurm job ids of the cluster's worker jobs submitted so far."""
    ids = (getattr(job, "job_id", None) for job in list(cluster.workers.values()))
    return [str(job_id) for job_id in ids if job_id]


@contextmanager
def open_cluster(backend: str, slurm_options: dict):
    """A cluster that is always closed, its Slurm jobs cancelled, on any exit."""
    if backend == "local":
        cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                               dashboard_address=config.lab("dashboard-address"))
        try:
            yield cluster
        finally:
            cluster.close()
        return

    from dask_jobqueue import SLURMCluster

    options = dict(slurm_options)
    scheduler = dict(options.get("scheduler_options") or config.slurm("scheduler-options") or {})
    scheduler.setdefault("dashboard_address", config.lab("dashboard-address"))
    options["scheduler_options"] = scheduler
    cluster = SLURMCluster(**options)
    submitted: set[str] = set()
    cluster.lab_submitted = submitted  # filled while waiting, read on exit
    try:
        yield cluster
    finally:
        submitted.update(_slurm_job_ids(cluster))
        try:
            cluster.close(timeout=30)
        finally:
            # close() cancels its jobs; make sure, even after Ctrl-C mid-close,
            # and wait until Slurm has let them go.
            left = [row["job"] for row in slurm.queue(sorted(submitted))]
            if left:
                slurm.cancel(left)
            slurm.wait_gone(sorted(submitted), timeout=60)


def _pending(ids: list[str]) -> tuple[int, str]:
    """How many of the jobs are pending, and why (Slurm's reasons)."""
    pending = [r for r in slurm.queue(ids) if r["state"] == "PENDING"] if ids else []
    return len(pending), ", ".join(sorted({r["reason"] for r in pending}))


def wait_for_workers(client, cluster, wanted: int, timeout: float, say) -> tuple[int, float]:
    """Poll until `wanted` workers are connected or `timeout` passes.

    Says which worker jobs are pending and why (e.g. Resources) while waiting.
    Returns the number connected, and the seconds until every job was submitted.
    """
    start = time.monotonic()
    next_note = start + 5
    submitted = 0.0 if not hasattr(cluster, "lab_submitted") else None
    while True:
        connected = len(client.nthreads())
        now = time.monotonic()
        ids = _slurm_job_ids(cluster) if hasattr(cluster, "lab_submitted") else []
        if ids:
            cluster.lab_submitted.update(ids)
            if submitted is None and len(ids) >= wanted:
                submitted = now - start
        if connected >= wanted:
            return connected, submitted if submitted is not None else now - start
        if now - start >= timeout:
            count, reasons = _pending(ids)
            if count:
                say(f"{count} worker job(s) still pending after {timeout:g}s "
                    f"(reason: {reasons}); going on with {connected}")
            return connected, submitted if submitted is not None else now - start
        if ids and now >= next_note:
            count, reasons = _pending(ids)
            if count:
                say(f"waiting: {connected}/{wanted} workers connected, "
                    f"{count} job(s) pending (reason: {reasons})")
            next_note = now + 5
        time.sleep(0.05)


def run_study(backend: str, workers: int, size: int, parts: int,
              slurm_options: dict | None = None, timeout: float | None = None,
              say=print, show_job_script: bool = False, kernel: str = "python") -> RunResult:
    wall_start = time.monotonic()
    timeout = float(config.lab("worker-timeout") if timeout is None else timeout)
    phases: dict[str, float] = {}
    with open_cluster(backend, slurm_options or {}) as cluster:
        phases["start_scheduler"] = time.monotonic() - wall_start
        if show_job_script and backend == "slurm":
            say(cluster.job_script())
        with Client(cluster) as client:
            scale_start = time.monotonic()
            cluster.scale(workers)
            connected, phases["submit"] = wait_for_workers(client, cluster, workers, timeout, say)
            startup = time.monotonic() - scale_start
            phases["wait_for_workers"] = startup - phases["submit"]
            if connected == 0:
                raise NoWorkers(
                    f"no worker connected within {timeout:g}s; see `squeue` and the "
                    f"worker logs, or raise lab.worker-timeout (--worker-timeout)")
            where = client.run(_where, on_error="ignore")  # a worker may die meanwhile
            say(f"computing {parts} parts of {size} on {len(where)} workers ...")
            graph = build_graph(size, parts, kernel)
            compute_start = time.monotonic()
            total, lost = compute_watched(client, cluster, graph, slurm_options or {})
            compute = time.monotonic() - compute_start
            if lost:
                lost &= set(where)
                names = ", ".join(f"{where[a]['node']} (job {where[a]['job'] or '-'})" for a in sorted(lost))
                say(f"lost {len(lost)} worker(s) during the compute: {names}; dask recomputed their parts")
            teardown_start = time.monotonic()
        job_ids = _slurm_ids(cluster)
    phases["compute"] = compute
    phases["teardown"] = time.monotonic() - teardown_start
    leftover = [row["job"] for row in slurm.queue(job_ids)] if job_ids else []
    expected = expected_sum(size, parts)
    return RunResult(
        backend=backend, workers_requested=workers, workers_connected=connected,
        size=size, parts=parts, total=total, expected=expected,
        correct=total == expected, compute_seconds=compute, startup_seconds=startup,
        wall_seconds=time.monotonic() - wall_start,
        workers=sorted(where.values(), key=lambda w: (w["node"], w["job"])),
        job_ids=job_ids, leftover_jobs=leftover, kernel=kernel,
        workers_lost=[where[address] for address in sorted(lost)], phases=phases,
        cores_available=cores_available(list(where.values()),
                                        int((slurm_options or {}).get("cores", 1))),
    )

