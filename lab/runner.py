"""Run the study once: start workers, wait for them, time the compute, clean up."""

from __future__ import annotations

import getpass
import os
import socket
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dask.distributed import Client, LocalCluster

from . import config, slurm
from .errors import LabError
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
    compute_times: list[float] = field(default_factory=list)  # each repeat's; compute_seconds is their median

    def to_dict(self) -> dict:
        return asdict(self)


class NoWorkers(LabError):
    """No worker connected before the timeout."""


class RunFailed(LabError):
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


def time_repeats(repeats: int, size: int, parts: int, kernel: str, compute) -> tuple[list[float], int]:
    """Compute a fresh graph (new keys: nothing is reused) `repeats` times with
    compute(graph) -> total; each compute's seconds, and the total to report:
    the first wrong one, else the right one."""
    times, totals = [], []
    for _ in range(repeats):
        graph = build_graph(size, parts, kernel)
        start = time.monotonic()
        totals.append(compute(graph))
        times.append(time.monotonic() - start)
    expected = expected_sum(size, parts)
    return times, next((total for total in totals if total != expected), expected)


def warm() -> None:
    """Runs on every worker before the clock starts: the imports a task needs
    (lab.study, NumPy), so the timed compute is the compute alone."""
    import lab.study  # noqa: F401


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
        "cpu_ids": sorted(os.sched_getaffinity(0)),
    }


def cores_available(workers: list[dict], cores_per_worker: int = 1) -> int:
    """CPU cores the workers really have: per machine (boot id) the cores they
    may run on (compute nodes pinned to host cores of their own add up; nodes
    that share cores count them once), summed over machines, and no more than
    the workers asked for."""
    per_machine: dict[str, set[int]] = {}
    for worker in workers:
        ids = worker.get("cpu_ids") or range(worker["cpus"])
        per_machine.setdefault(worker["boot"], set()).update(ids)
    return min(sum(map(len, per_machine.values())), len(workers) * cores_per_worker)


def _slurm_job_ids(cluster) -> list[str]:
    """Slurm job ids of the cluster's worker jobs submitted so far."""
    ids = (getattr(job, "job_id", None) for job in list(cluster.workers.values()))
    return [str(job_id) for job_id in ids if job_id]


def security():
    """Temporary TLS credentials for one run (lab.tls), or None."""
    if not config.lab("tls"):
        return None
    from distributed.security import Security

    return Security.temporary()


def tls_directory() -> str:
    """Where the worker jobs' copies of the run's credentials go: a folder the
    nodes share, that only its owner may enter."""
    folder = Path(os.path.expanduser(str(config.lab("tls-directory"))))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return str(folder)


def tunnel_hint(cluster) -> str | None:
    """How to reach a dashboard that listens on this machine's loopback only."""
    if not str(config.lab("dashboard-address")).startswith(("127.0.0.1:", "localhost:")):
        return None
    link = cluster.dashboard_link
    port = link.split(":")[2].split("/")[0]
    return (f"dashboard: {link} (on this machine; from yours: ssh -L {port}:127.0.0.1:{port} "
            f"{_user()}@{socket.getfqdn()})")


@contextmanager
def open_cluster(backend: str, slurm_options: dict):
    """A cluster that is always closed, its Slurm jobs cancelled, on any exit."""
    if backend == "local":
        cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                               dashboard_address=config.lab("dashboard-address"), security=security())
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
    credentials = security()
    if credentials is not None:
        options["security"] = credentials
        options.setdefault("shared_temp_directory", tls_directory())
    jobs = SLURMCluster(**options)
    submitted: set[str] = set()
    jobs.lab_submitted = submitted  # type: ignore[attr-defined]  # filled while waiting, read on exit
    try:
        yield jobs
    finally:
        submitted.update(_slurm_job_ids(jobs))
        try:
            jobs.close(timeout=30)
        finally:
            # close() cancels its jobs; make sure, even after Ctrl-C mid-close,
            # and wait until Slurm has let them go.
            left = [row["job"] for row in slurm.queue(sorted(submitted))]
            if left:
                slurm.cancel(left)
            slurm.wait_gone(sorted(submitted), timeout=60)


def _pending(rows: list[dict]) -> tuple[int, str]:
    """How many of the queued jobs are pending, and why (Slurm's reasons)."""
    pending = [r for r in rows if r["state"] == "PENDING"]
    return len(pending), ", ".join(sorted({r["reason"] for r in pending}))


# Folders no compute node shares with the login node: a job submitted from
# one cannot write its output file there.
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")


def worker_command(job_script: str) -> str:
    """What the worker jobs start dask's worker with: their python, or in
    Apptainer the runtime's command ending in the image's python."""
    line = next(ln for ln in job_script.splitlines() if "distributed.cli.dask_worker" in ln)
    return line.split(" -m distributed.cli.dask_worker")[0].strip()


def explain_ended(job_ids: list[str], worker: str) -> str:
    """Why worker jobs ended before their workers connected, from accounting.
    `worker` is the command their job script starts the worker with."""
    try:
        rows = slurm.accounting(job_ids, ["JobID", "State", "ExitCode", "WorkDir"], "-X")
    except slurm.SlurmError as err:
        return f"sacct cannot say why ({err})"
    if not rows:
        return "accounting has no record of them yet; see sacct and the worker logs"
    parts = []
    for state in sorted({row["State"].split()[0] for row in rows}):
        same = [row for row in rows if row["State"].split()[0] == state]
        jobs = " ".join(row["JobID"] for row in same)
        codes = ", ".join(sorted({row["ExitCode"] for row in same}))
        text = f"{state} ({jobs}; exit code {codes})"
        # Accounting may not have the folder yet a moment after the job ended;
        # lab submitted the jobs from its own.
        folders = sorted({row["WorkDir"] or os.getcwd() for row in same})
        local = [f for f in folders if f == "/" or f.startswith(tuple(p + "/" for p in NODE_LOCAL))
                 or f in NODE_LOCAL]
        if state == "FAILED" and local:
            text += (f": submitted from {', '.join(local)}, a folder the compute nodes do not share, so "
                     f"the job's output file cannot be opened; submit from a folder the compute nodes "
                     f"share, such as your home")
        elif state == "NODE_FAIL":
            text += ": their node stopped answering (a stopped or killed node); run again"
        elif state == "OUT_OF_MEMORY":
            text += ": raise --memory or jobqueue.slurm.memory"
        elif state == "TIMEOUT":
            text += ": raise --walltime or jobqueue.slurm.walltime"
        elif state == "FAILED" and codes == "127:0":
            text += (f": the worker command was not found on the compute nodes; set jobqueue.slurm.python "
                     f"to a python the nodes have (now {worker})")
        elif state == "FAILED":
            text += ": see the job's output file (slurm-<job>.out, or jobqueue.slurm.log-directory)"
        parts.append(text)
    return "; ".join(parts)


def wait_for_workers(client, cluster, wanted: int, timeout: float, say) -> tuple[int, float, str]:
    """Poll until `wanted` workers are connected, `timeout` passes, or every
    worker job has ended.

    Says which worker jobs are pending and why (e.g. Resources) while waiting,
    and, within a second or two, why worker jobs ended before their workers
    connected. Returns the number connected, the seconds until every job was
    submitted, and why jobs ended ("" when none did).
    """
    start = time.monotonic()
    next_note = start + 5
    next_queue = start
    slurm_jobs = hasattr(cluster, "lab_submitted")
    submitted = None if slurm_jobs else 0.0
    rows: list[dict] = []
    reported: set[str] = set()
    ended_reason = ""
    while True:
        connected = len(client.nthreads())
        now = time.monotonic()
        ids = _slurm_job_ids(cluster) if slurm_jobs else []
        if ids:
            cluster.lab_submitted.update(ids)
            if submitted is None and len(ids) >= wanted:
                submitted = now - start
        took = submitted if submitted is not None else now - start
        if connected >= wanted:
            return connected, took, ended_reason
        if ids and now >= next_queue:
            next_queue = now + 1
            try:
                rows = slurm.queue(ids)
            except slurm.SlurmError:  # a controller restarting: ask again, its jobs wait too
                continue
            ended = set(ids) - {row["job"] for row in rows} - reported
            if ended and connected < len(ids):
                reported |= ended
                ended_reason = explain_ended(sorted(ended), worker_command(cluster.job_script()))
                say(f"{len(ended)} worker job(s) ended before their workers connected: {ended_reason}")
            if not rows and len(ids) >= wanted:  # nothing left to wait for
                return connected, took, ended_reason
        if now - start >= timeout:
            count, reasons = _pending(rows)
            if count:
                say(f"{count} worker job(s) still pending after {timeout:g}s "
                    f"(reason: {reasons}); going on with {connected}")
            return connected, took, ended_reason
        if rows and now >= next_note:
            count, reasons = _pending(rows)
            if count:
                say(f"waiting: {connected}/{wanted} workers connected, "
                    f"{count} job(s) pending (reason: {reasons})")
            next_note = now + 5
        time.sleep(0.05)


def run_study(backend: str, workers: int, size: int, parts: int,
              slurm_options: dict | None = None, timeout: float | None = None,
              say=print, show_job_script: bool = False, kernel: str = "python",
              repeats: int = 1) -> RunResult:
    """One run: start the workers, wait for them, warm them, then time the
    compute `repeats` times on the same workers (compute_seconds: the median)."""
    wall_start = time.monotonic()
    timeout = float(config.lab("worker-timeout") if timeout is None else timeout)
    phases: dict[str, float] = {}
    with open_cluster(backend, slurm_options or {}) as cluster:
        phases["start_scheduler"] = time.monotonic() - wall_start
        if show_job_script and backend == "slurm":
            say(cluster.job_script())
        hint = tunnel_hint(cluster)
        if hint:
            say(hint)
        with Client(cluster) as client:
            scale_start = time.monotonic()
            cluster.scale(workers)
            connected, phases["submit"], ended = wait_for_workers(client, cluster, workers, timeout, say)
            startup = time.monotonic() - scale_start
            phases["wait_for_workers"] = startup - phases["submit"]
            if connected == 0 and ended:
                raise NoWorkers(f"the worker jobs ended before any worker connected: {ended}")
            if connected == 0:
                raise NoWorkers(
                    f"no worker connected within {timeout:g}s; see `squeue` and the "
                    f"worker logs, or raise lab.worker-timeout (--worker-timeout)")
            where = client.run(_where, on_error="ignore")  # a worker may die meanwhile
            client.run(warm, on_error="ignore")
            say(f"computing {parts} parts of {size} on {len(where)} workers ...")
            lost: set[str] = set()

            def compute_once(graph) -> int:
                total, lost_now = compute_watched(client, cluster, graph, slurm_options or {})
                lost.update(lost_now)
                return total

            times, total = time_repeats(repeats, size, parts, kernel, compute_once)
            compute = statistics.median(times)
            lost &= set(where)  # workers that joined after the count are not ours to report
            if lost:
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
        workers_lost=[where[address] for address in sorted(lost)], phases=phases, compute_times=times,
        cores_available=cores_available(list(where.values()),
                                        int((slurm_options or {}).get("cores", 1))),
    )

