"""Job mode: the study as one Slurm batch job, needing no Slurm client inside
the image. `lab job` writes (and with --submit, submits) a batch script whose
one `srun` starts WORKERS+2 ranks of `lab run --runner`: dask-jobqueue's
SLURMRunner makes rank 0 the scheduler, rank 1 the client (it runs the study
and prints the result) and the rest workers. They meet through a scheduler
file in a folder every node shares; inside Apptainer each rank runs in the
same image (`apptainer exec lab.sif lab ...`)."""

from __future__ import annotations

import os
import shlex
import socket
import time
from pathlib import Path

from . import config

# Rank 0 runs the scheduler, rank 1 the client: the workers are the rest.
EXTRA_RANKS = 2


def scheduler_file() -> str:
    """Where the ranks meet: the home folder, which every node of a site shares."""
    return str(Path("~/.cache/dask-slurm-lab/scheduler-{job_id}.json").expanduser())


def job_script(workers: int, size: int, parts: int, options: dict, results: Path,
               sif: str | None) -> str:
    """The batch script: one srun of WORKERS+2 ranks of `lab run --runner`."""
    lab = ["lab", "run", "--runner", "--size", str(size), "--parts", str(parts),
           "--json", f"{results}/job-$SLURM_JOB_ID.json"]
    if sif:  # every rank in the same image, by the runtime's absolute path
        runtime = shlex.split(str(config.lab("apptainer.command")))
        launcher = [*runtime, "exec", "--bind", "${SLURM_TMPDIR:-/tmp}", sif]
    else:
        launcher = []
    command = " ".join(shlex.quote(word) if "$" not in word else f'"{word}"' for word in [*launcher, *lab])
    lines = ["#!/bin/bash",
             "#SBATCH --job-name=lab-job",
             f"#SBATCH --ntasks={workers + EXTRA_RANKS}",
             "#SBATCH --cpus-per-task=1",
             f"#SBATCH --mem-per-cpu={options.get('memory', '512M')}",
             f"#SBATCH --time={options.get('walltime', '00:15:00')}"]
    if options.get("queue"):
        lines.append(f"#SBATCH --partition={options['queue']}")
    if options.get("account"):
        lines.append(f"#SBATCH --account={options['account']}")
    lines += ["# The study as one job: rank 0 the Dask scheduler, rank 1 the client, the rest",
              "# workers (dask-jobqueue's SLURMRunner). Written by `lab job`.",
              f"mkdir -p {shlex.quote(str(results))} ~/.cache/dask-slurm-lab",
              f"srun {command}"]
    return "\n".join(lines) + "\n"


def run_ranks(size: int, parts: int, say=print):
    """One rank of the job. The client rank returns the study's RunResult;
    the scheduler and the workers return None once the client is done."""
    from dask.distributed import Client
    from dask_jobqueue.slurm import SLURMRunner

    from .graph import build_graph, expected_sum
    from .run import RunResult
    from .workers import Placement, cores_available, where

    rank = int(os.environ.get("SLURM_PROCID", "-1"))
    wall_start = time.monotonic()
    try:
        runner = SLURMRunner(scheduler_file=scheduler_file())
    except KeyboardInterrupt:
        # SLURMRunner ends the scheduler and the workers with SIGINT once
        # the client has closed: their normal end.
        if rank != 1:
            return None
        raise
    with runner, Client(runner) as client:
        start = time.monotonic()
        client.wait_for_workers(runner.n_workers, timeout=float(config.lab("worker-timeout")))
        startup = time.monotonic() - start
        placed = [Placement(**fields) for fields in client.run(where).values()]
        say(f"computing {parts} parts of {size} on {len(placed)} workers (job {os.environ['SLURM_JOB_ID']}, "
            f"client on {socket.gethostname()}) ...")
        compute_start = time.monotonic()
        total = client.compute(build_graph(size, parts)).result()
        compute = time.monotonic() - compute_start
    expected = expected_sum(size, parts)
    return RunResult(
        backend="runner", workers_requested=runner.n_workers, workers_connected=len(placed),
        size=size, parts=parts, total=total, expected=expected, correct=total == expected,
        compute_seconds=compute, startup_seconds=startup, wall_seconds=time.monotonic() - wall_start,
        workers=sorted(placed, key=lambda w: (w.node, w.job)),
        job_ids=[os.environ["SLURM_JOB_ID"]], phases={"wait_for_workers": startup, "compute": compute},
        cores_available=cores_available(placed),
    )
