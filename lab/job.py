"""Job mode: the study as one Slurm batch job, needing no Slurm client inside
the image. `lab job` writes (and with --submit, submits) a batch script whose
one `srun` starts WORKERS+2 ranks of `lab run --runner`: dask-jobqueue's
SLURMRunner makes rank 0 the scheduler, rank 1 the client (it runs the study
and prints the result) and the rest workers. They meet through a scheduler
file in a folder every node shares; inside Apptainer each rank runs in the
same image (`apptainer exec lab.sif lab ...`)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
from pathlib import Path

from . import apptainer, config, diagnose, openssl_queue, slurm
from .banners import report
from .errors import BadInput, RunFailed
from .spec import Plan, RunSpec

# Rank 0 runs the scheduler, rank 1 the client: the workers are the rest.
EXTRA_RANKS = 2


def scheduler_file() -> str:
    """Where the ranks meet: the home folder, which every node of a site shares."""
    return str(Path("~/.cache/dask-slurm-lab/scheduler-{job_id}.json").expanduser())


def credentials_file(job_id: str) -> Path:
    """The job's TLS credentials, beside its scheduler file."""
    return Path(scheduler_file()).parent / f"tls-{job_id}.json"


def job_security(rank: int, job_id: str, timeout: float):
    """The job's TLS credentials, the same for every rank: rank 0 makes them
    (temporary, as a run's) and writes them beside the scheduler file, in a
    folder of the owner's alone; the others wait for that file. None when
    lab.tls is off. Rank 1 (the client) deletes the file when the run ends."""
    from distributed.security import Security

    if not config.lab("tls"):
        return None
    openssl_queue.warn_if_off()
    path = credentials_file(job_id)
    fields = ("tls_ca_file", "tls_scheduler_cert", "tls_scheduler_key", "tls_worker_cert", "tls_worker_key",
              "tls_client_cert", "tls_client_key")
    if rank == 0:
        made = Security.temporary()
        new = path.with_suffix(".new")
        handle = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "w") as out:
            json.dump({name: getattr(made, name) for name in fields}, out)
        new.replace(path)  # whole, or not there: the others read it only then
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RunFailed(f"rank {rank}: no TLS credentials from rank 0 within {timeout:g}s ({path})")
        time.sleep(0.2)
    return Security(require_encryption=True, **json.loads(path.read_text()))


def job_script(plan: Plan, sif: str | None) -> str:
    """The batch script: one srun of WORKERS+2 ranks of `lab run --runner`."""
    spec, results = plan.run, plan.results
    lab = ["lab", "run", "--runner", "--size", str(spec.size), "--parts", str(spec.parts),
           "--json", f"{results}/job-$SLURM_JOB_ID.json"]
    if sif:  # every rank in the same image, by the runtime's absolute path
        runtime = shlex.split(str(config.lab("apptainer.command")))
        launcher = [*runtime, "exec", "--bind", "${SLURM_TMPDIR:-/tmp}", sif]
    else:
        launcher = []
    command = " ".join(shlex.quote(word) if "$" not in word else f'"{word}"' for word in [*launcher, *lab])
    directives = ["--job-name=lab-job", f"--ntasks={spec.workers + EXTRA_RANKS}", "--cpus-per-task=1",
                  f"--mem-per-cpu={plan.job_memory}", f"--time={plan.job_walltime}", *spec.placement]
    lines = ["#!/bin/bash", *(f"#SBATCH {directive}" for directive in directives),
             "# The study as one job: rank 0 the Dask scheduler, rank 1 the client, the rest",
             "# workers (dask-jobqueue's SLURMRunner). Written by `lab job`.",
             f"mkdir -p {shlex.quote(str(results))} ~/.cache/dask-slurm-lab",
             f"srun {command}"]
    return "\n".join(lines) + "\n"


def command(plan: Plan, args) -> int:
    """`lab job`: print the job script, or submit it (and wait for its result)."""
    sif, submit, wait = args.sif, args.submit, args.wait
    if sif and not Path(sif).is_file():
        raise BadInput(f"--sif: no image at {sif}; build it with make sif")
    # Every rank in an image: --sif, else the one lab runs in, if any.
    sif = str(Path(sif).resolve()) if sif else apptainer.image()
    script = job_script(plan, sif)
    if not submit:
        print(script, end="")
        return 0
    problem = slurm.client_problem()
    if problem is not None:
        raise BadInput(f"--submit needs sbatch: {problem or 'there is none here'}; print the job "
                       f"(leave out --submit) and submit it with the host's sbatch")
    flags = ["--parsable", *(["--wait"] if wait else [])]
    job = slurm.run("sbatch", *flags, timeout=24 * 3600 if wait else 30, stdin=script,
                    env=slurm.environment(plan.run.placement)).strip()
    job = job.split(";")[0]
    output = Path.cwd() / f"slurm-{job}.out"
    print(f"lab job: submitted job {job}; its output: {output}; its result: {plan.results}/job-{job}.json",
          flush=True)
    if wait:
        print(output.read_text() if output.exists() else "(no output file)", end="")
        found = plan.results / f"job-{job}.json"
        if not found.exists():
            rows = slurm.accounting([job], ["JobID", "State", "ExitCode", "WorkDir"], "-X")
            raise RunFailed(f"job {job} ended without a result: {diagnose.ended(rows, worker='lab')}")
        return 0 if json.loads(found.read_text())["correct"] else 1
    return 0


def run_as_rank(spec: RunSpec, json_path) -> int:
    """`lab run --runner`: one rank of a job mode run."""
    if "SLURM_PROCID" not in os.environ:
        raise BadInput("--runner is for the ranks of one srun; `lab job` writes such a job")
    result = run_ranks(spec, say=lambda text: print(text, flush=True))
    return 0 if result is None else report(result, json_path)  # None: the scheduler or a worker


def runner_class(security):
    """dask-jobqueue's SLURMRunner, whose client rank also ends the scheduler
    over TLS (its own connection for that takes no credentials)."""
    from dask_jobqueue.slurm import SLURMRunner
    from distributed.core import rpc

    class Runner(SLURMRunner):
        async def before_client_start(self):
            if security is not None and self.scheduler_address:
                self.scheduler_comm = rpc(self.scheduler_address,
                                          connection_args=security.get_connection_args("client"))
            await super().before_client_start()

    return Runner


def run_ranks(spec: RunSpec, say=print):
    """One rank of the job. The client rank returns the study's RunResult;
    the scheduler and the workers return None once the client is done."""
    from dask.distributed import Client

    from .graph import build_graph, expected_sum
    from .results import Placement, RunResult
    from .workers import where
    from .workers.distributed import private_folder

    rank = int(os.environ.get("SLURM_PROCID", "-1"))
    job_id = os.environ["SLURM_JOB_ID"]
    wall_start = time.monotonic()
    private_folder(str(Path(scheduler_file()).parent))  # the owner's alone: the credentials go there too
    security = job_security(rank, job_id, spec.timeout)
    secure = {} if security is None else {"security": security}
    try:
        runner = runner_class(security)(scheduler_file=scheduler_file(), worker_options=dict(secure),
                                        scheduler_options={**secure, **({"protocol": "tls"} if secure else {})})
    except KeyboardInterrupt:
        # SLURMRunner ends the scheduler and the workers with SIGINT once
        # the client has closed: their normal end.
        if rank != 1:
            return None
        raise
    try:
        with runner, Client(runner, **secure) as client:
            start = time.monotonic()
            client.wait_for_workers(runner.n_workers, timeout=spec.timeout)
            startup = time.monotonic() - start
            placed = [Placement(**fields) for fields in client.run(where).values()]
            say(f"computing {spec.parts} parts of {spec.size} on {len(placed)} workers (job {job_id}, "
                f"client on {socket.gethostname()}, scheduler {client.scheduler.address}) ...")
            compute_start = time.monotonic()
            total = client.compute(build_graph(spec.size, spec.parts)).result()
            compute = time.monotonic() - compute_start
    finally:
        credentials_file(job_id).unlink(missing_ok=True)
    return RunResult(
        backend="runner", workers_requested=runner.n_workers, workers_connected=len(placed),
        size=spec.size, parts=spec.parts, total=total, expected=expected_sum(spec.size, spec.parts),
        compute_seconds=compute, startup_seconds=startup, wall_seconds=time.monotonic() - wall_start,
        workers=sorted(placed, key=lambda w: (w.node, w.job)), compute_times=[compute],
        job_ids=[job_id], phases={"wait_for_workers": startup, "compute": compute},
    )
