"""`lab prep`: the lesson's output blocks, regenerated on this cluster, as
Markdown snippets an instructor drops into the lesson (one file per block)."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from . import results, slurm
from .graph import check_sum
from .run import run
from .spec import RunSpec
from .workers import SlurmWorkers


def snippet(title: str, command: str | None, output: str) -> str:
    shell = f"```\n$ {command}\n```\n\n" if command else ""
    return f"<!-- {title}: made by `lab prep` on {time.strftime('%Y-%m-%d')} -->\n{shell}```\n{output.rstrip()}\n```\n"


def squeue_snapshots(spec: RunSpec) -> tuple[str, str, str]:
    """The job script, then squeue while the worker starts (PD), then running (R)."""
    with SlurmWorkers(replace(spec, workers=1)) as workers:
        script = workers.job_script()
        workers.scale(1)
        user = slurm.run("whoami").strip()
        deadline = time.monotonic() + 10
        pending = ""
        while time.monotonic() < deadline and not pending:  # catch it queued, if we can
            out = slurm.run("squeue", "-u", user)
            pending = out if len(out.splitlines()) > 1 else ""
            time.sleep(0.5)  # a site's controller serves hundreds of users: ask gently
        workers.client.wait_for_workers(1, timeout=spec.timeout)
        running = slurm.run("squeue", "-u", user)
    return script, pending, running


def gil_job(cpus: int, size: int, parts: int, folder: Path, python: str = "python") -> tuple[str, str, str]:
    """The GIL episode: the threaded scheduler in a job of `cpus` CPUs, run by
    `python` (the worker jobs' own: inside Apptainer, the same image).
    Returns the job id, what it printed, and its seff report."""
    from .seff import efficiency, format_report, query

    code = (f"import time, dask; from lab.graph import build_graph; g = build_graph({size}, {parts}); "
            f"t = time.time(); g.compute(scheduler='threads', num_workers={cpus}); "
            "print('Compute time: %.2fs' % (time.time() - t))")
    output = folder / f".gil-{cpus}cpu.out"
    job = slurm.run("sbatch", "--parsable", "--wait", f"--cpus-per-task={cpus}", "--mem=1G",
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
        lines.append(f"| {workers} | {took:.2f} | {speedup} | {max(1, min(workers, parts, cores))} | "
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


def prep(spec: RunSpec, worker_counts: list[int], gil_cpus: list[int], results_dir: Path, say=print) -> Path:
    """The lesson's blocks for `spec` (a slurm run) at each of worker_counts,
    and its GIL episode in jobs of each of gil_cpus CPUs."""
    out = results.new_run_dir(results_dir, prefix="lesson-")
    write = lambda name, text: results.write_atomic(out / name, text)  # noqa: E731

    say("job script and squeue (PD, then R) ...")
    script, pending, running = squeue_snapshots(spec)
    write("job-script.md", snippet("print(cluster.job_script())", None, script))
    if pending:
        write("squeue-pending.md", snippet("worker job queued", "squeue", pending))
    write("squeue-running.md", snippet("worker job running", "squeue", running))

    seconds: dict[int, float] = {}
    cores, queue_wait = 0, 0.0
    for workers in worker_counts:
        say(f"compute time with {workers} worker(s) ...")
        result = run(replace(spec, workers=workers), say=lambda text: print(f"  {text}", file=sys.stderr))
        check_sum(result.total, spec.size, spec.parts)  # WrongSum: one line, exit 1
        seconds[workers] = result.compute_seconds
        cores = max(cores, result.cores_available)
        queue_wait = max(queue_wait, result.phases.get("wait_for_workers", 0.0))
    write("compute-times.md", f"<!-- compute times: made by `lab prep` on {time.strftime('%Y-%m-%d')}, "
          f"{spec.parts} parts of {spec.size} -->\n" + compare_with_lesson(seconds, spec.parts, cores, queue_wait))

    for cpus in gil_cpus:
        say(f"GIL episode: threaded scheduler on {cpus} CPU(s), then seff ...")
        job, printed, report = gil_job(cpus, spec.size, spec.parts, out, spec.slurm.get("python") or "python")
        write(f"gil-{cpus}cpu.md", snippet(f"GIL episode, threaded scheduler, {cpus} CPU(s)",
                                           f"srun --cpus-per-task={cpus} python compute.py", printed))
        write(f"seff-{cpus}cpu.md", snippet(f"GIL episode, {cpus} CPU(s)", f"seff {job}", report))
    say(f"lesson snippets: {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return out
