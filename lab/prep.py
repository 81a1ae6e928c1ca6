"""`lab prep`: the lesson's output blocks, regenerated on this cluster, as
Markdown snippets an instructor drops into the lesson (one file per block)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from . import results, slurm
from .graph import check_sum
from .run import run
from .spec import Plan, RunSpec
from .workers import open_workers


def snippet(title: str, command: str | None, output: str) -> str:
    shell = f"```\n$ {command}\n```\n\n" if command else ""
    return f"<!-- {title}: made by `lab prep` on {time.strftime('%Y-%m-%d')} -->\n{shell}```\n{output.rstrip()}\n```\n"


def squeue_snapshots(spec: RunSpec) -> tuple[str, str, str]:
    """The job script of one worker job, then squeue (the learner's own jobs:
    --me needs no passwd entry) while it starts (PD), then running (R)."""
    with open_workers(spec) as workers:
        script = workers.describe(job_script=True)[0]
        workers.scale(1)
        deadline = time.monotonic() + 10
        pending = ""
        while time.monotonic() < deadline and not pending:  # catch it queued, if we can
            out = slurm.run("squeue", "--me")
            pending = out if len(out.splitlines()) > 1 else ""
            time.sleep(1)  # a site's controller serves hundreds of users: ask gently
        workers.wait(1, spec.timeout, say=lambda text: print(f"  {text}", file=sys.stderr))
        running = slurm.run("squeue", "--me")
    return script, pending, running


def gil_job(cpus: int, spec: RunSpec, folder: Path) -> tuple[str, str, str]:
    """The GIL episode: the threaded scheduler in a job of `cpus` CPUs, placed
    and run as the spec's worker jobs are (their python: inside Apptainer, the
    same image). Returns the job id, what it printed, and its seff report."""
    from .seff import efficiency, format_report, query

    python = spec.slurm.get("python") or "python"
    code = (f"import time, dask; from lab.graph import build_graph; g = build_graph({spec.size}, {spec.parts}); "
            f"t = time.time(); g.compute(scheduler='threads', num_workers={cpus}); "
            "print('Compute time: %.2fs' % (time.time() - t))")
    output = folder / f".gil-{cpus}cpu.out"
    job = slurm.run("sbatch", "--parsable", "--wait", f"--cpus-per-task={cpus}", "--mem=1G",
                    f"--time={spec.slurm.get('walltime', '00:05:00')}", *spec.placement,
                    "--job-name=gil", f"--output={output}", f"--wrap={python} -c \"{code}\"",
                    timeout=900).strip()
    printed = output.read_text() if output.exists() else ""
    output.unlink(missing_ok=True)
    deadline = time.monotonic() + 30
    while True:  # the final accounting record comes a moment after the job ends
        rows = query(job)
        if rows[0]["Group"] and rows[0]["State"] == "COMPLETED" or time.monotonic() > deadline:
            return job, printed, format_report(efficiency(rows))
        time.sleep(0.5)


# The lesson as published: compute times with 4 parts (ACENET "Distributed
# computations", SLURMCluster workers of 1 core), by number of workers.
LESSON_SECONDS = {1: 12.33, 2: 6.07, 4: 3.45, 8: 3.38}
LESSON_PARTS = 4


def compare_with_lesson(seconds: dict[int, float], parts: int, cores: int, queue_wait: float) -> str:
    """This site's compute times beside the lesson's, as speedups over 1
    worker, and what an instructor should expect here, and why."""
    lines = ["| numWorkers | Compute time (s), here | speedup, here | limit here | "
             "Compute time (s), lesson | speedup, lesson |", "|---|---|---|---|---|---|"]
    here_one, lesson_one = seconds.get(1), LESSON_SECONDS[1]
    for workers, took in sorted(seconds.items()):
        speedup = f"{here_one / took:.2f}" if here_one else "-"
        lesson = LESSON_SECONDS.get(workers)
        lines.append(f"| {workers} | {took:.2f} | {speedup} | {results.limit(workers, parts, cores)} | "
                     + (f"{lesson:.2f} | {lesson_one / lesson:.2f} |" if lesson else "- | - |"))
    expect = [f"Expect the speedup to follow min(workers, parts, cores): {parts} parts "
              f"and {cores} cores for the workers here"]
    if cores < min(max(seconds), parts):
        expect.append(f"so past {cores} workers this site cannot speed up where the lesson "
                      f"(with {LESSON_PARTS} parts on its own cores) reached "
                      f"{lesson_one / LESSON_SECONDS[4]:.2f}x at 4")
    else:
        expect.append(f"as in the lesson, whose {LESSON_PARTS} parts stop it at 4 workers")
    if queue_wait > 5:
        expect.append(f"worker jobs waited {queue_wait:.0f} s in the queue before they ran: "
                      "on a busy site, start the cluster before the episode")
    return "\n".join(lines) + "\n\n" + "; ".join(expect) + ".\n"


def command(plan: Plan, args=None, say=print) -> int:
    """`lab prep`, the lesson's blocks: one worker job watched in squeue (the plan's
    probe), the compute-time table (its runs), and the GIL episode in jobs of
    each of its gil_cpus CPUs."""
    assert plan.probe is not None  # spec.resolve("prep") makes it
    with results.new_results(plan.results, prefix="lesson-") as out:
        write = lambda name, text: results.write_atomic(out / name, text)  # noqa: E731

        say("job script and squeue (PD, then R) ...")
        script, pending, running = squeue_snapshots(plan.probe)
        write("job-script.md", snippet("print(cluster.job_script())", None, script))
        if pending:
            write("squeue-pending.md", snippet("worker job queued", "squeue", pending))
        write("squeue-running.md", snippet("worker job running", "squeue", running))

        seconds: dict[int, float] = {}
        cores, queue_wait = 0, 0.0
        for spec in plan.runs:
            say(f"compute time with {spec.workers} worker(s) ...")
            result = run(spec, say=lambda text: print(f"  {text}", file=sys.stderr))
            check_sum(result.total, spec.size, spec.parts)  # WrongSum: one line, exit 1
            seconds[spec.workers] = result.compute_seconds
            cores = max(cores, result.cores_available)
            queue_wait = max(queue_wait, result.phases.get("wait_for_workers", 0.0))
        write("compute-times.md", f"<!-- compute times: made by `lab prep` on {time.strftime('%Y-%m-%d')}, "
              f"{plan.probe.parts} parts of {plan.probe.size} -->\n"
              + compare_with_lesson(seconds, plan.probe.parts, cores, queue_wait))

        for cpus in plan.gil_cpus:
            say(f"GIL episode: threaded scheduler on {cpus} CPU(s), then seff ...")
            job, printed, report = gil_job(cpus, plan.probe, out)
            write(f"gil-{cpus}cpu.md", snippet(f"GIL episode, threaded scheduler, {cpus} CPU(s)",
                                               f"srun --cpus-per-task={cpus} python compute.py", printed))
            write(f"seff-{cpus}cpu.md", snippet(f"GIL episode, {cpus} CPU(s)", f"seff {job}", report))
        say(f"lesson snippets: {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})")
        return 0

