"""The study's PNG: for each kernel, compute time and speedup against workers,
with each point's range over the repeats, and one legend below the panels."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .graph import KERNELS, SCHEDULERS  # noqa: E402
from .results import Row  # noqa: E402

# One colour per scheduler in every panel, so one legend serves them all.
COLOURS = {name: f"C{number}" for number, name in enumerate(SCHEDULERS)}


def plot(rows: list[Row], path: Path):
    """Write the PNG and return the (closed) figure, for tests to inspect.
    Axes: a row of compute-time panels, then a row of speedup panels, one
    column per kernel."""
    kernels = [k for k in KERNELS if any(r.kernel == k for r in rows)] or ["python"]  # the lesson's order
    fig, axes = plt.subplots(2, len(kernels), figsize=(5.5 * len(kernels), 8), squeeze=False)
    all_workers = sorted({r.workers_requested for r in rows})
    parts = max((r.parts for r in rows), default=0)
    cores = max((r.cores_available for r in rows), default=0) or max(all_workers, default=0)
    for column, kernel in enumerate(kernels):
        time_ax, speed_ax = axes[0][column], axes[1][column]
        series = defaultdict(list)
        for row in rows:
            if row.correct and row.kernel == kernel:
                series[row.scheduler].append(row)
        for scheduler, points in sorted(series.items(), key=lambda item: SCHEDULERS.index(item[0])):
            points.sort(key=lambda r: r.workers_requested)
            workers = [r.workers_requested for r in points]
            seconds = [r.compute_seconds for r in points]
            below = [s - r.span[0] for s, r in zip(seconds, points, strict=True)]
            above = [r.span[1] - s for s, r in zip(seconds, points, strict=True)]
            time_ax.errorbar(workers, seconds, yerr=[below, above], marker="o", capsize=3, label=scheduler,
                             color=COLOURS[scheduler])
            speedups = [(r.workers_requested, r.speedup) for r in points if r.speedup]
            if speedups:
                speed_ax.plot(*zip(*speedups, strict=True), marker="o", label=scheduler, color=COLOURS[scheduler])
        if all_workers:
            speed_ax.plot(all_workers, all_workers, color="grey", linestyle=":", label="ideal (= workers)")
            speed_ax.plot(all_workers, [min(w, parts, cores) for w in all_workers], color="black",
                          linestyle="--", label=f"limit min(workers, parts={parts}, cores={cores})")
        time_ax.set(xlabel="workers", ylabel="compute time (s)", title=f"Compute time: {kernel} kernel")
        speed_ax.set(xlabel="workers", ylabel="speedup over 1 worker", title=f"Speedup: {kernel} kernel")
        for ax in (time_ax, speed_ax):
            ax.set_xscale("log", base=2)
            ax.set_xticks(all_workers, [str(w) for w in all_workers])
            ax.grid(True, alpha=0.3)
    # One legend for every panel, below them, never over the data.
    handles: dict = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    order = sorted(handles, key=lambda label: SCHEDULERS.index(label) if label in SCHEDULERS else 99)
    fig.legend([handles[label] for label in order], order, loc="lower center", ncol=4, fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig
