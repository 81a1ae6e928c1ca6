"""`lab prep`: the lesson's output blocks, regenerated on this cluster, as
Markdown snippets an instructor drops into the lesson (one file per block)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from . import results, slurm
from .runner import open_cluster, run_study
from .study import check_sum


def snippet(title: str, command: str | None, output: str) -> str:
    shell = f"```\n$ {command}\n```\n\n" if command else ""
    return f"<!-- {title}: made by `lab prep` on {time.strftime('%Y-%m-%d')} -->\n{shell}```\n{output.rstrip()}\n```\n"


def squeue_snapshots(options: dict, timeout: float) -> tuple[str, str, str]:
    """The job script, then squeue while the worker starts (PD), then running (R)."""
    from dask.distributed import Client

    with open_cluster("slurm", options) as cluster, Client(cluster) as client:
        script = cluster.job_script()
        cluster.scale(1)
        user = slurm.run("whoami").strip()
        deadline = time.monotonic() + 10
        pending = ""
        while time.monotonic() < deadline and not pending:  # catch it queued, if we can
            out = slurm.run("squeue", "-u", user)
            pending = out if len(out.splitlines()) > 1 else ""
            time.sleep(0.5)  # a site's controller serves hundreds of users: ask gently
        client.wait_for_workers(1, timeout=timeout)
        running = slurm.run("squeue", "-u", user)
    return script, pending, running


def gil_job(cpus: int, size: int, parts: int, folder: Path, python: str = "python") -> tuple[str, str, str]:
    """The GIL episode: the threaded scheduler in a job of `cpus` CPUs, run by
    `python` (the worker jobs' own: inside Apptainer, the same image).
    Returns the job id, what it printed, and its seff report."""
    from .seff import efficiency, format_report, query

    code = (f"import time, dask; from lab.study import build_graph; g = build_graph({size}, {parts}); "
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


def prep(worker_counts: list[int], gil_cpus: list[int], size: int, parts: int, options: dict,
         timeout: float, results_dir: Path, say=print) -> Path:
    out = results.new_run_dir(results_dir, prefix="lesson-")
    write = lambda name, text: results.write_atomic(out / name, text)  # noqa: E731

    say("job script and squeue (PD, then R) ...")
    script, pending, running = squeue_snapshots(options, timeout)
    write("job-script.md", snippet("print(cluster.job_script())", None, script))
    if pending:
        write("squeue-pending.md", snippet("worker job queued", "squeue", pending))
    write("squeue-running.md", snippet("worker job running", "squeue", running))

    lines = ["| numWorkers | Compute time (s) |", "|---|---|"]
    for workers in worker_counts:
        say(f"compute time with {workers} worker(s) ...")
        result = run_study("slurm", workers, size, parts, slurm_options=options, timeout=timeout,
                           say=lambda text: print(f"  {text}", file=sys.stderr))
        check_sum(result.total, size, parts)  # WrongSum: one line, exit 1
        lines.append(f"| {workers} | {result.compute_seconds:.2f} |")
    write("compute-times.md", f"<!-- compute times: made by `lab prep` on {time.strftime('%Y-%m-%d')} -->\n"
          + "\n".join(lines) + "\n")

    for cpus in gil_cpus:
        say(f"GIL episode: threaded scheduler on {cpus} CPU(s), then seff ...")
        job, printed, report = gil_job(cpus, size, parts, out, options.get("python") or "python")
        write(f"gil-{cpus}cpu.md", snippet(f"GIL episode, threaded scheduler, {cpus} CPU(s)",
                                           f"srun --cpus-per-task={cpus} python compute.py", printed))
        write(f"seff-{cpus}cpu.md", snippet(f"GIL episode, {cpus} CPU(s)", f"seff {job}", report))
    say(f"lesson snippets: {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return out
