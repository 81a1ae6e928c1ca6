"""dask-jobqueue's SLURMCluster as Workers: one worker job per worker, as the
lesson starts them."""

from __future__ import annotations

import asyncio
import socket
import time

from .. import diagnose, slurm
from ..errors import SlurmError
from ..spec import RunSpec
from . import Waited
from .distributed import DaskWorkers, private_folder, security

# Seconds between two squeue calls while waiting, doubling up to the second
# figure: a site's controller serves every learner of a class at once, and
# sites rate-limit each user (rl_enable: 2 requests a second after a burst).
QUEUE_EVERY = (1.0, 4.0)
# Once the scheduler counts workers (they connect), squeue is asked only why
# the rest wait or ended: at most this often.
QUEUE_COUNTED = 30.0


def refusal(error: RuntimeError) -> str:
    """sbatch's own words from dask-jobqueue's error for a failed submission
    (its stderr: a site's submit filter says why before sbatch's last line)."""
    text = str(error)
    stderr = text.split("stderr:", 1)[1] if "stderr:" in text else text
    return " / ".join(line.strip() for line in stderr.splitlines() if line.strip()) or text.strip()


def job_class(refused: list[str], env: dict[str, str] | None = None):
    """dask-jobqueue's SLURMJob, but a submission Slurm refuses is kept in
    `refused`, for wait() to say at once, in Slurm's words, instead of a
    traceback in the event loop and a wait for the whole worker timeout;
    sbatch runs in `env` (slurm.environment: the run's account)."""
    import shlex

    from dask_jobqueue.slurm import SLURMJob
    from distributed.deploy.spec import ProcessInterface

    class Job(SLURMJob):
        async def _submit_job(self, script_filename):
            return await self._call(shlex.split(self.submit_command) + [script_filename], env=env)

        async def start(self):
            for pause in slurm.RATE_LIMITED:
                try:
                    await super().start()
                    return
                except RuntimeError as err:
                    # A controller with rl_enable asks its callers to wait: ask again, later.
                    if "rate limit" in str(err).lower() and pause is not None:
                        await asyncio.sleep(pause)
                        continue
                    refused.append(refusal(err))
                    # Counted as started (nothing runs, job_id stays None), so the
                    # cluster's own bookkeeping raises nothing; the run says why.
                    await ProcessInterface.start(self)
                    return

    return Job


def cluster_options(spec: RunSpec, refused: list[str]) -> dict:
    """SLURMCluster's keyword arguments for a run's worker jobs: the spec's, the
    run's TLS credentials, and a job class that keeps refusals in `refused`."""
    options = dict(spec.slurm, job_cls=job_class(refused, slurm.environment(spec.placement)))
    credentials = security(spec)
    if credentials is not None:
        options["security"] = credentials
        private_folder(options["shared_temp_directory"])
    return options


def forget_credentials(cluster) -> None:
    """The worker jobs' copies of the credentials: dask-jobqueue deletes them
    only when the cluster object is collected; delete them now."""
    for key in ("ca_file", "cert", "key"):
        credentials = getattr(cluster, f"_job_{key}", None)
        if credentials is not None:
            credentials.close()


class SlurmWorkers(DaskWorkers):
    """Every job it submitted is cancelled on close, and waited for until
    Slurm has let it go; a refused submission ends the wait at once."""

    def __init__(self, spec: RunSpec):
        from dask_jobqueue import SLURMCluster

        self.refused: list[str] = []
        options = cluster_options(spec, self.refused)
        self.submitted: set[str] = set()  # filled while waiting, read on close
        self.cores_per_worker = int(spec.slurm.get("cores", 1))
        super().__init__(spec, SLURMCluster(**options))

    def describe(self, job_script: bool = False) -> list[str]:
        return [*([self.job_script()] if job_script else []), *super().describe()]

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
        Resources) while waiting, and, within a few seconds, why worker jobs
        ended before their workers connected."""
        start = time.monotonic()
        next_note = start + 5
        next_queue = start
        pause = QUEUE_EVERY[0]
        submitted: float | None = None
        rows: list[dict] = []
        reported: set[str] = set()
        ended_reason = ""
        while True:
            if self.refused:
                raise SlurmError(f"sbatch refused the worker job: {self.refused[0]}")
            connected = self.connected()
            now = time.monotonic()
            ids = self.current_jobs()
            if submitted is None and len(ids) >= count:
                submitted = now - start
            took = submitted if submitted is not None else now - start
            if connected >= count:
                return Waited(connected, took, ended_reason)
            if ids and now >= next_queue:
                pause = min(pause * 2, QUEUE_EVERY[1]) if next_queue > start else QUEUE_EVERY[0]
                next_queue = now + (QUEUE_COUNTED if connected else pause)
                try:
                    rows = slurm.queue(ids)
                except SlurmError:  # a controller restarting: ask again, its jobs wait too
                    continue
                ended = set(ids) - {row["job"] for row in rows} - reported
                if ended and connected < len(ids):
                    reported |= ended
                    ended_reason = self.explain_ended(sorted(ended))
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

    def unreached(self) -> str:
        """Worker jobs that run but whose workers never reached the scheduler:
        the compute nodes cannot reach the address it listens on."""
        try:
            running = [row for row in slurm.queue(self.current_jobs()) if row["state"] == "RUNNING"]
        except SlurmError:
            return ""
        if not running:
            return ""
        nodes = ", ".join(sorted({row["node"] for row in running}))
        return (f"{len(running)} worker job(s) run (on {nodes}) but none reached the scheduler at "
                f"{self.cluster.scheduler_address}: the compute nodes cannot reach that address; name the "
                f"network they share with this host with --interface (here: {interfaces()})")

    def explain_ended(self, job_ids: list[str]) -> str:
        try:
            rows = slurm.accounting(job_ids, ["JobID", "State", "ExitCode", "WorkDir"], "-X")
        except SlurmError as err:
            return f"sacct cannot say why ({err})"
        return diagnose.ended(rows, worker_command(self.job_script()))

    def explain_lost(self, killed: bool) -> str:
        """Why the workers went away, from accounting, and which limit to raise."""
        states: dict[str, list[str]] = {}
        try:
            for row in slurm.accounting(self.job_ids, ["JobID", "State"], "-X"):
                states.setdefault(row["State"].split()[0], []).append(row["JobID"])
        except SlurmError:
            pass
        return diagnose.lost(states, killed, self.spec.slurm)

    def leftover(self) -> list[str]:
        return [row["job"] for row in slurm.queue(self.job_ids)]

    def close_cluster(self) -> None:
        self.current_jobs()
        try:
            self.cluster.close(timeout=30)
            forget_credentials(self.cluster)
        finally:
            # close() cancels its jobs; make sure, even after Ctrl-C mid-close,
            # and wait until Slurm has let them go.
            left = [row["job"] for row in slurm.queue(sorted(self.submitted))]
            if left:
                slurm.cancel(left)
            slurm.wait_gone(sorted(self.submitted), timeout=60)


def interfaces() -> str:
    """This host's network interfaces and their IPv4 addresses, loopback aside."""
    import psutil

    found = [f"{name} {address.address}" for name, addresses in sorted(psutil.net_if_addrs().items())
             for address in addresses if address.family == socket.AF_INET and name != "lo"]
    return ", ".join(found) or "none"


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
