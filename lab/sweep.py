"""`lab study`: the lesson's whole argument, measured: schedulers x kernels x workers."""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import dask
import distributed

from . import metrics, results, slurm
from .notes import notes
from .runner import time_repeats, warm
from .study import SIZE_FACTOR, expected_sum

# The exact Debian packages the image installed (containers/apt-install).
PACKAGES_RECORD = Path("/usr/share/dask-slurm-lab/packages.txt")


def image_packages() -> str:
    try:
        return " ".join(PACKAGES_RECORD.read_text().split())
    except OSError:  # not in one of the lab's images
        return ""


def versions() -> dict:
    import dask_jobqueue

    try:
        slurm_version = slurm.run("sinfo", "--version", timeout=10).split()[-1]
    except slurm.SlurmError:
        slurm_version = ""
    return {
        "python": platform.python_version(), "dask": dask.__version__,
        "distributed": distributed.__version__, "dask_jobqueue": dask_jobqueue.__version__,
        "slurm": slurm_version,
        "image": os.environ.get("LAB_IMAGE_ID") or os.environ.get("APPTAINER_CONTAINER", ""),
        "packages": image_packages(),
        "host_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


@contextmanager
def warm_pool(scheduler: str, workers: int):
    """The in-process schedulers' workers, started and warmed before the clock,
    as LocalCluster and SLURM workers are: a thread pool, or a process pool
    whose processes have started and imported what a task needs. (dask would
    otherwise start a fresh process pool inside every timed compute.)"""
    if scheduler == "synchronous":
        yield None
        return
    pool: Executor
    if scheduler == "threads":
        pool = ThreadPoolExecutor(workers)
    else:
        context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
        pool = ProcessPoolExecutor(workers, mp_context=context)
    with pool:
        # Each task holds its worker a moment, so every one of the pool's workers starts.
        list(pool.map(_warm_worker, range(workers)))
        yield pool


def compute_in(graph, scheduler: str, workers: int, pool):
    """Compute the graph with one of dask's in-process schedulers on a warmed pool.
    chunksize=1: dask's process scheduler otherwise sends ready tasks in
    batches of 6 (its default, for many small tasks), so the study's few long
    parts would all run in one process, one after the other."""
    return graph.compute(scheduler=scheduler, num_workers=workers, pool=pool, chunksize=1)


def _warm_worker(_: int) -> None:
    warm()
    time.sleep(0.2)


def run_one(scheduler: str, kernel: str, workers: int, size: int, parts: int,
            slurm_options: dict, timeout: float, say, repeats: int = 1) -> dict:
    """One point of the study, timed `repeats` times on the same warmed
    workers; the same row shape for every scheduler."""
    if scheduler in ("local", "slurm"):
        from .runner import run_study

        result = run_study(scheduler, workers, size, parts, slurm_options=slurm_options,
                           timeout=timeout, say=say, kernel=kernel, repeats=repeats)
        row = result.to_dict()
        row["nodes"] = ";".join(sorted({w["node"] for w in result.workers}))
        row["job_ids"] = ";".join(result.job_ids)
    else:
        wall_start = time.monotonic()
        with warm_pool(scheduler, workers) as pool:
            times, total = time_repeats(repeats, size, parts, kernel,
                                        lambda graph: compute_in(graph, scheduler, workers, pool))
        row = {"workers_connected": workers, "total": total,
               "compute_seconds": statistics.median(times), "compute_times": times,
               "wall_seconds": time.monotonic() - wall_start, "nodes": platform.node(),
               "job_ids": "", "cores_available": len(os.sched_getaffinity(0))}
    row.update(scheduler=scheduler, kernel=kernel, workers_requested=workers, size=size, parts=parts)
    row["correct"] = row["total"] == expected_sum(size, parts)
    row["repeats"] = len(row["compute_times"])
    row["compute_min"], row["compute_max"] = min(row["compute_times"]), max(row["compute_times"])
    return row


def cpu_efficiency(job_ids: list[str]) -> float | None:
    """CPU efficiency of worker jobs, from accounting: CPU time / (cores x elapsed)."""
    cpu = core_seconds = 0.0
    for row in slurm.accounting(job_ids, ["TotalCPU", "ElapsedRaw", "AllocCPUS", "State"], "-X"):
        if row["State"] in ("RUNNING", "PENDING"):
            return None
        cpu += slurm.seconds(row["TotalCPU"])
        core_seconds += float(row["ElapsedRaw"] or 0) * int(row["AllocCPUS"] or 0)
    # Worker jobs end by scancel; where Slurm then records no CPU time (a node
    # whose slurmstepd cannot read the job's /proc files), say unknown, not 0%.
    if not core_seconds or cpu < 0.1:
        return None
    return 100.0 * cpu / core_seconds


def progress(done: int, total: int, label: str) -> None:
    bar = "#" * int(30 * done / total)
    end = "\n" if done == total or not sys.stderr.isatty() else ""
    print(f"\r[{bar:<30}] {done}/{total} {label:<50}", end=end, file=sys.stderr, flush=True)


def short_number(n: int) -> str:
    """20000000 as 2e7; a number that short form would round stays whole."""
    mantissa, exponent = f"{n:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}" if float(f"{mantissa}e{exponent}") == n and n >= 1000 else str(n)


def format_table(rows: list[dict], markdown: bool = False) -> str:
    head = ["scheduler", "kernel", "size", "workers", "connected", "compute (s)", "range (s)", "speedup",
            "efficiency", "limit", "sum"]
    body = []
    for r in rows:
        spread = (f"{r['compute_min']:.2f}-{r['compute_max']:.2f}"
                  if r.get("repeats", 1) > 1 else "-")
        body.append([r["scheduler"], r["kernel"], short_number(r["size"]),
                     str(r["workers_requested"]), str(r["workers_connected"]),
                     f"{r['compute_seconds']:.2f}", spread,
                     f"{r['speedup']:.2f}" if r.get("speedup") else "-",
                     f"{100 * r['efficiency']:.0f}%" if r.get("efficiency") else "-",
                     str(r["ideal_speedup"]), "ok" if r["correct"] else "WRONG"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body]) + "\n"
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i > 2 else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def report_markdown(rows: list[dict], said: list[str], meta: dict) -> str:
    lines = ["# dask-slurm-lab study", "",
             f"{meta['date']}: Python {meta['python']}, dask {meta['dask']}, distributed "
             f"{meta['distributed']}, dask-jobqueue {meta['dask_jobqueue']}"
             + (f", Slurm {meta['slurm']}" if meta["slurm"] else "")
             + f"; {meta['host_cores']} host cores.", "",
             format_table(rows, markdown=True)]
    if said:
        lines += ["", *[f"- {note}" for note in said]]
    return "\n".join(lines) + "\n"


def run_sweep(schedulers: list[str], kernels: list[str], worker_counts: list[int], size: int,
              parts: int, slurm_options: dict, timeout: float, results_dir: Path, say=print,
              repeat: int = 1) -> Path:
    plan = []
    for scheduler in schedulers:
        for kernel in kernels:
            counts = [1] if scheduler == "synchronous" else worker_counts
            plan += [(scheduler, kernel, workers) for workers in counts]
    run_dir = results.new_run_dir(results_dir)
    meta = versions()
    rows: list[dict] = []
    say(f"study {run_dir.name}: {len(plan)} runs -> {run_dir}")
    for number, (scheduler, kernel, workers) in enumerate(plan):
        progress(number, len(plan), f"{scheduler} / {kernel} / {workers} workers")
        row = run_one(scheduler, kernel, workers, size * SIZE_FACTOR[kernel], parts, slurm_options,
                      timeout, say=lambda text: print(f"\n  {text}", file=sys.stderr), repeats=repeat)
        rows.append({**row, **meta, "run_id": run_dir.name, "cpu_efficiency": None})
        metrics.add_speedups(rows)
        results.save(run_dir, rows, report_markdown(rows, notes(rows), meta))  # kept if interrupted
    progress(len(plan), len(plan), "done")
    for row in rows:  # accounting records are final a moment after the jobs end
        if row["job_ids"]:
            row["cpu_efficiency"] = cpu_efficiency(row["job_ids"].split(";"))
    said = notes(rows)
    results.save(run_dir, rows, report_markdown(rows, said, meta))
    from .plot import plot

    plot(rows, run_dir / "study.png")
    say(format_table(rows))
    for note in said:
        say(f"- {note}")
    say(f"results: {run_dir}/results.csv, results.json, results.md, study.png")
    return run_dir
