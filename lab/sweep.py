"""`lab study`: the lesson's whole argument, measured: schedulers x kernels x workers."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import dask
import distributed

from . import metrics, results, slurm
from .notes import notes
from .study import build_graph, expected_sum

SCHEDULERS = ("synchronous", "threads", "processes", "local", "slurm")


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


def run_one(scheduler: str, kernel: str, workers: int, size: int, parts: int,
            slurm_options: dict, timeout: float, say) -> dict:
    """One run of the study; the same row shape for every scheduler."""
    if scheduler in ("local", "slurm"):
        from .runner import run_study

        result = run_study(scheduler, workers, size, parts, slurm_options=slurm_options,
                           timeout=timeout, say=say, kernel=kernel)
        row = result.to_dict()
        row["nodes"] = ";".join(sorted({w["node"] for w in result.workers}))
        row["job_ids"] = ";".join(result.job_ids)
    else:
        wall_start = time.monotonic()  # wall: building the graph too, as in the lesson
        graph = build_graph(size, parts, kernel)
        start = time.monotonic()
        total = graph.compute(scheduler=scheduler, num_workers=workers)
        compute = time.monotonic() - start
        row = {"workers_connected": workers, "total": total, "compute_seconds": compute,
               "wall_seconds": time.monotonic() - wall_start, "nodes": platform.node(),
               "job_ids": "", "cores_available": len(os.sched_getaffinity(0))}
    row.update(scheduler=scheduler, kernel=kernel, workers_requested=workers, size=size, parts=parts)
    row["correct"] = row["total"] == expected_sum(size, parts)
    return row


def cpu_efficiency(job_ids: list[str]) -> float | None:
    """CPU efficiency of worker jobs, from accounting: CPU time / (cores x elapsed)."""
    from .seff import parse_duration

    cpu = core_seconds = 0.0
    for row in slurm.accounting(job_ids, ["TotalCPU", "ElapsedRaw", "AllocCPUS", "State"], "-X"):
        if row["State"] in ("RUNNING", "PENDING"):
            return None
        cpu += parse_duration(row["TotalCPU"])
        core_seconds += float(row["ElapsedRaw"] or 0) * int(row["AllocCPUS"] or 0)
    # Worker jobs end by scancel; where Slurm then records no CPU time (its
    # rusage of killed steps, seen with 22.05 in containers), say unknown, not 0%.
    if not core_seconds or cpu < 0.1:
        return None
    return 100.0 * cpu / core_seconds


def progress(done: int, total: int, label: str) -> None:
    bar = "#" * int(30 * done / total)
    end = "\n" if done == total or not sys.stderr.isatty() else ""
    print(f"\r[{bar:<30}] {done}/{total} {label:<50}", end=end, file=sys.stderr, flush=True)


def format_table(rows: list[dict], markdown: bool = False) -> str:
    head = ["scheduler", "kernel", "workers", "connected", "compute (s)", "speedup",
            "efficiency", "limit", "sum"]
    body = []
    for r in rows:
        body.append([r["scheduler"], r["kernel"], str(r["workers_requested"]), str(r["workers_connected"]),
                     f"{r['compute_seconds']:.2f}",
                     f"{r['speedup']:.2f}" if r.get("speedup") else "-",
                     f"{100 * r['efficiency']:.0f}%" if r.get("efficiency") else "-",
                     str(r["ideal_speedup"]), "ok" if r["correct"] else "WRONG"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body]) + "\n"
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i > 1 else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
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
              parts: int, slurm_options: dict, timeout: float, results_dir: Path, say=print) -> Path:
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
        row = run_one(scheduler, kernel, workers, size, parts, slurm_options, timeout,
                      say=lambda text: print(f"\n  {text}", file=sys.stderr))
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
