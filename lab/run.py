"""One run of the lesson's graph: start the spec's workers, wait for them, warm
them, time the compute, close them (cancelling any Slurm jobs); and `lab run`,
which prints it as the lesson does."""

from __future__ import annotations

import statistics
import time

from .banners import report
from .errors import NoWorkers
from .graph import build_graph, expected_sum
from .results import RunResult
from .spec import Plan, RunSpec
from .workers import open_workers


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


def run(spec: RunSpec, say=print, show_job_script: bool = False) -> RunResult:
    """One run: start the workers, wait for them, warm them, then time the
    compute `spec.repeats` times on the same workers."""
    wall_start = time.monotonic()
    phases: dict[str, float] = {}
    with open_workers(spec) as workers:
        phases["start_scheduler"] = time.monotonic() - wall_start
        for line in workers.describe(job_script=show_job_script):
            say(line)
        scale_start = time.monotonic()
        workers.scale(spec.workers)
        waited = workers.wait(spec.workers, spec.timeout, say)
        startup = time.monotonic() - scale_start
        phases["submit"] = waited.submit_seconds
        phases["wait_for_workers"] = startup - waited.submit_seconds
        if waited.connected == 0 and waited.ended:
            raise NoWorkers(f"the worker jobs ended before any worker connected: {waited.ended}")
        if waited.connected == 0:
            raise NoWorkers(f"no worker connected within {spec.timeout:g}s; " + (
                workers.unreached() or "see `squeue` and the worker logs, or raise lab.worker-timeout "
                "(--worker-timeout)"))
        where = workers.placements()
        workers.warm()
        say(f"computing {spec.parts} parts of {spec.size} on {len(where)} workers ...")
        times, total = time_repeats(spec.repeats, spec.size, spec.parts, spec.kernel, workers.compute)
        lost = workers.lost & set(where)  # workers that joined after the count are not ours to report
        if lost:
            names = ", ".join(f"{where[a].node} (job {where[a].job or '-'})" for a in sorted(lost))
            say(f"lost {len(lost)} worker(s) during the compute: {names}; dask recomputed their parts")
        teardown_start = time.monotonic()
    phases["compute"] = statistics.median(times)
    phases["teardown"] = time.monotonic() - teardown_start
    return RunResult(
        backend=spec.scheduler, workers_requested=spec.workers, workers_connected=waited.connected,
        size=spec.size, parts=spec.parts, total=total, expected=expected_sum(spec.size, spec.parts),
        compute_seconds=statistics.median(times), startup_seconds=startup,
        wall_seconds=time.monotonic() - wall_start,
        workers=sorted(where.values(), key=lambda w: (w.node, w.job)),
        job_ids=workers.job_ids, leftover_jobs=workers.leftover(), kernel=spec.kernel,
        workers_lost=[where[address] for address in sorted(lost)], phases=phases, compute_times=times,
        cores_per_worker=workers.cores_per_worker,
    )


def command(plan: Plan, args) -> int:
    """`lab run`: the run (or, with --runner, one rank of a job mode run), printed."""
    if args.runner:
        from .job import run_as_rank

        return run_as_rank(plan.run, plan.json)
    result = run(plan.run, say=lambda text: print(text, flush=True), show_job_script=args.show_job_script)
    return report(result, plan.json)
