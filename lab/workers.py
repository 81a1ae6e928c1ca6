"""Who computes a run: one Workers interface, one implementation per kind of
scheduler. Every command starts workers only through `open_workers(spec)`,
so every scheduler is started, warmed, timed and closed the same way:

- InProcess: dask's synchronous, threads and processes schedulers, on a pool
  started and warmed before the clock (as distributed workers are);
- LocalWorkers: a LocalCluster of single-threaded worker processes;
- SlurmWorkers: dask-jobqueue's SLURMCluster, one worker job per worker; it
  says why jobs pend or ended while waiting, and cancels its jobs on any exit.
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import socket
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import config, slurm
from .errors import RunFailed, SlurmError
from .spec import RunSpec

# Seconds with no worker at all before a run gives up on its compute.
NO_WORKER_GRACE = 20
# Folders no compute node shares with the login node: a job submitted from
# one cannot write its output file there.
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")


@dataclass(frozen=True)
class Placement:
    """Where one worker runs, whose it is, and which machine's cores it may use
    (containers on one host share the kernel's boot id)."""

    node: str
    job: str
    user: str
    boot: str
    cpus: int
    cpu_ids: list[int] = field(default_factory=list)


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
    """Runs on each worker: its Placement's fields (a dict: the client may
    lack nothing, but the worker's answer travels by pickle)."""
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


def cores_available(placements: list[Placement], cores_per_worker: int = 1) -> int:
    """CPU cores the workers really have: per machine (boot id) the cores they
    may run on (compute nodes pinned to host cores of their own add up; nodes
    that share cores count them once), summed over machines, and no more than
    the workers asked for."""
    per_machine: dict[str, set[int]] = {}
    for worker in placements:
        per_machine.setdefault(worker.boot, set()).update(worker.cpu_ids or range(worker.cpus))
    return min(sum(map(len, per_machine.values())), len(placements) * cores_per_worker)


class Workers:
    """The workers of one run. Use as a context manager (open_workers): they
    are closed, and any Slurm jobs cancelled, on every exit, Ctrl-C included."""

    cores_per_worker = 1

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.lost: set[str] = set()  # workers (by address) lost during a compute

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

    def hints(self) -> list[str]:
        """What to tell the user before the run (a dashboard's ssh tunnel)."""
        return []

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcess(Workers):
    """dask's in-process schedulers: a thread pool, or a process pool whose
    processes have started and imported what a task needs (dask would
    otherwise start a fresh process pool inside every timed compute)."""

    def __init__(self, spec: RunSpec):
        super().__init__(spec)
        self.pool: Executor | None = None
        self.count = 0

    def scale(self, count: int) -> None:
        self.count = count
        if self.spec.scheduler == "synchronous":
            return
        if self.spec.scheduler == "threads":
            self.pool = ThreadPoolExecutor(count)
        else:
            import dask

            context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
            self.pool = ProcessPoolExecutor(count, mp_context=context)
        # Each task holds its worker a moment, so every one of the pool's workers starts.
        list(self.pool.map(_warm_worker, range(count)))

    def wait(self, count: int, timeout: float, say) -> Waited:
        return Waited(connected=self.count, submit_seconds=0.0)

    def placements(self) -> dict[str, Placement]:
        here = Placement(**where())
        return {f"{self.spec.scheduler}-{number}": here for number in range(self.count)}

    def compute(self, graph) -> int:
        """chunksize=1: dask's process scheduler otherwise sends ready tasks in
        batches of 6 (its default, for many small tasks), so the study's few
        long parts would all run in one process, one after the other."""
        return graph.compute(scheduler=self.spec.scheduler, num_workers=self.count, pool=self.pool, chunksize=1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _warm_worker(_: int) -> None:
    warm()
    time.sleep(0.2)


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
            return ("workers went over their memory limit and were restarted until none was left: "
                    "give them more memory")
        return "all workers were lost; see the worker logs"

    def hints(self) -> list[str]:
        """How to reach a dashboard that listens on this machine's loopback only."""
        if not str(config.lab("dashboard-address")).startswith(("127.0.0.1:", "localhost:")):
            return []
        link = self.cluster.dashboard_link
        port = link.split(":")[2].split("/")[0]
        return [f"dashboard: {link} (on this machine; from yours: ssh -L {port}:127.0.0.1:{port} "
                f"{user()}@{socket.getfqdn()})"]

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
                                            dashboard_address=config.lab("dashboard-address"),
                                            security=security()))


class SlurmWorkers(DaskWorkers):
    """dask-jobqueue's SLURMCluster: one worker job per worker, as the lesson
    starts them. Every job it submitted is cancelled on close, and waited for
    until Slurm has let it go."""

    def __init__(self, spec: RunSpec):
        from dask_jobqueue import SLURMCluster

        options = dict(spec.slurm)
        scheduler = dict(options.get("scheduler_options") or config.slurm("scheduler-options") or {})
        scheduler.setdefault("dashboard_address", config.lab("dashboard-address"))
        options["scheduler_options"] = scheduler
        credentials = security()
        if credentials is not None:
            options["security"] = credentials
            options.setdefault("shared_temp_directory", tls_directory())
        self.submitted: set[str] = set()  # filled while waiting, read on close
        self.cores_per_worker = int(spec.slurm.get("cores", 1))
        super().__init__(spec, SLURMCluster(**options))

    def job_script(self) -> str:
        return self.cluster.job_script()

    def current_jobs(self) -> list[str]:
        """Slurm job ids of the cluster's worker jobs submitted so far."""
        ids = (getattr(job, "job_id", None) for job in list(self.cluster.workers.values()))
        found = [str(job_id) for job_id in ids if job_id]
        self.submitted.update(found)
        return found

    @property
    def job_ids(self) -> list[str]:
        self.current_jobs()
        return sorted(self.submitted)

    def wait(self, count: int, timeout: float, say) -> Waited:
        """Poll until `count` workers are connected, `timeout` passes, or every
        worker job has ended. Says which worker jobs are pending and why (e.g.
        Resources) while waiting, and, within a second or two, why worker jobs
        ended before their workers connected."""
        start = time.monotonic()
        next_note = start + 5
        next_queue = start
        submitted: float | None = None
        rows: list[dict] = []
        reported: set[str] = set()
        ended_reason = ""
        while True:
            connected = self.connected()
            now = time.monotonic()
            ids = self.current_jobs()
            if submitted is None and len(ids) >= count:
                submitted = now - start
            took = submitted if submitted is not None else now - start
            if connected >= count:
                return Waited(connected, took, ended_reason)
            if ids and now >= next_queue:
                next_queue = now + 1
                try:
                    rows = slurm.queue(ids)
                except SlurmError:  # a controller restarting: ask again, its jobs wait too
                    continue
                ended = set(ids) - {row["job"] for row in rows} - reported
                if ended and connected < len(ids):
                    reported |= ended
                    ended_reason = explain_ended(sorted(ended), worker_command(self.job_script()))
                    say(f"{len(ended)} worker job(s) ended before their workers connected: {ended_reason}")
                if not rows and len(ids) >= count:  # nothing left to wait for
                    return Waited(connected, took, ended_reason)
            if now - start >= timeout:
                pending = pending_note(rows)
                if pending:
                    say(f"{pending} after {timeout:g}s; going on with {connected}")
                return Waited(connected, took, ended_reason)
            if rows and now >= next_note:
                pending = pending_note(rows)
                if pending:
                    say(f"waiting: {connected}/{count} workers connected, {pending}")
                next_note = now + 5
            time.sleep(0.05)

    def explain_lost(self, killed: bool) -> str:
        """Why the workers went away, from accounting, and which limit to raise."""
        options = self.spec.slurm
        states: dict[str, list[str]] = {}
        try:
            for row in slurm.accounting(self.job_ids, ["JobID", "State"], "-X"):
                states.setdefault(row["State"].split()[0], []).append(row["JobID"])
        except SlurmError:
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

    def close_cluster(self) -> None:
        self.current_jobs()
        try:
            self.cluster.close(timeout=30)
            # The worker jobs' copies of the credentials: dask-jobqueue deletes
            # them only when the cluster object is collected; delete them now.
            for key in ("ca_file", "cert", "key"):
                credentials = getattr(self.cluster, f"_job_{key}", None)
                if credentials is not None:
                    credentials.close()
        finally:
            # close() cancels its jobs; make sure, even after Ctrl-C mid-close,
            # and wait until Slurm has let them go.
            left = [row["job"] for row in slurm.queue(sorted(self.submitted))]
            if left:
                slurm.cancel(left)
            slurm.wait_gone(sorted(self.submitted), timeout=60)


KINDS: dict[str, type[Workers]] = {"synchronous": InProcess, "threads": InProcess, "processes": InProcess,
                                   "local": LocalWorkers, "slurm": SlurmWorkers}


def open_workers(spec: RunSpec) -> Workers:
    """The run's Workers (none started yet: scale them); a context manager
    that closes them on any exit."""
    return KINDS[spec.scheduler](spec)


def pending_note(rows: list[dict]) -> str:
    """'2 worker job(s) still pending (reason: Resources)', or "" when none pends."""
    pending = [row for row in rows if row["state"] == "PENDING"]
    if not pending:
        return ""
    reasons = ", ".join(sorted({row["reason"] for row in pending}))
    return f"{len(pending)} worker job(s) still pending (reason: {reasons})"


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
    except SlurmError as err:
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
