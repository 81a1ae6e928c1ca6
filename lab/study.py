"""`lab study`, a sweep: the lesson's whole argument, measured: one run for every
scheduler x kernel x worker count, saved, tabulated, noted and plotted."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

import dask
import distributed

from . import results, slurm
from .errors import BadInput, SlurmError
from .notes import notes
from .results import Row
from .run import run
from .seff import cpu_efficiency
from .spec import Plan

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
    except SlurmError:
        slurm_version = ""
    return {
        "python": platform.python_version(), "dask": dask.__version__,
        "distributed": distributed.__version__, "dask_jobqueue": dask_jobqueue.__version__,
        "slurm": slurm_version,
        "image": os.environ.get("LAB_IMAGE_ID") or os.environ.get("APPTAINER_CONTAINER", ""),
        "packages": image_packages(),
        "host_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def progress(done: int, total: int, label: str) -> None:
    bar = "#" * int(30 * done / total)
    end = "\n" if done == total or not sys.stderr.isatty() else ""
    print(f"\r[{bar:<30}] {done}/{total} {label:<50}", end=end, file=sys.stderr, flush=True)


def short_number(n: int) -> str:
    """20000000 as 2e7; a number that short form would round stays whole."""
    mantissa, exponent = f"{n:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}" if float(f"{mantissa}e{exponent}") == n and n >= 1000 else str(n)


def format_table(rows: list[Row], markdown: bool = False) -> str:
    head = ["scheduler", "kernel", "size", "workers", "connected", "compute (s)", "range (s)", "speedup",
            "efficiency", "limit", "sum"]
    body = []
    for r in rows:
        low, high = r.span
        body.append([r.scheduler, r.kernel, short_number(r.size), str(r.workers_requested),
                     str(r.workers_connected), f"{r.compute_seconds:.2f}",
                     f"{low:.2f}-{high:.2f}" if r.repeats > 1 else "-",
                     f"{r.speedup:.2f}" if r.speedup else "-",
                     f"{100 * r.efficiency:.0f}%" if r.efficiency else "-",
                     str(r.ideal_speedup), "ok" if r.correct else "WRONG"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body]) + "\n"
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i > 2 else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def report_markdown(rows: list[Row], said: list[str], meta: dict) -> str:
    lines = ["# dask-slurm-lab study", "",
             f"{meta['date']}: Python {meta['python']}, dask {meta['dask']}, distributed "
             f"{meta['distributed']}, dask-jobqueue {meta['dask_jobqueue']}"
             + (f", Slurm {meta['slurm']}" if meta["slurm"] else "")
             + f"; {meta['host_cores']} host cores.", "",
             format_table(rows, markdown=True)]
    if said:
        lines += ["", *[f"- {note}" for note in said]]
    return "\n".join(lines) + "\n"


def command(plan: Plan, args=None, say=print) -> int:
    """`lab study`: every run of the plan (spec.resolve("study")), each saved as
    it ends (an interrupted sweep keeps what it measured), then the table,
    notes and plot."""
    if importlib.util.find_spec("matplotlib") is None:  # before any run and any folder
        raise BadInput("this image has no matplotlib for the study's plot (compute nodes run workers only); "
                       "run lab study on the login node (make study)")
    with results.new_results(plan.results) as run_dir:
        meta = versions()
        rows: list[Row] = []
        runs = plan.runs
        say(f"study {run_dir.name}: {len(runs)} runs -> {run_dir}")
        for number, spec in enumerate(runs):
            progress(number, len(runs), f"{spec.scheduler} / {spec.kernel} / {spec.workers} workers")
            result = run(spec, say=lambda text: print(f"\n  {text}", file=sys.stderr))
            rows.append(Row.from_run(result, run_dir.name, meta))
            results.add_speedups(rows)
            results.save(run_dir, rows, report_markdown(rows, notes(rows), meta))  # kept if interrupted
        progress(len(runs), len(runs), "done")
        for row in rows:  # accounting records are final a moment after the jobs end
            if row.job_ids:
                row.cpu_efficiency = cpu_efficiency(row.job_ids.split(";"))
        said = notes(rows)
        results.save(run_dir, rows, report_markdown(rows, said, meta))
        from .plot import plot

        plot(rows, run_dir / "study.png")
        say(format_table(rows))
        for note in said:
            say(f"- {note}")
        say(f"results: {run_dir}/results.csv, results.json, results.md, study.png")
        return 0

