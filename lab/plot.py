"""The study's PNG: compute time and speedup against workers."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def plot(rows: list[dict], path: Path):
    """Write the PNG and return the (closed) figure, for tests to inspect."""
    series = defaultdict(list)
    for row in rows:
        if row["correct"]:
            series[f"{row['scheduler']} / {row['kernel']}"].append(row)
    fig, (time_ax, speed_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, points in sorted(series.items()):
        points.sort(key=lambda r: r["workers_requested"])
        workers = [r["workers_requested"] for r in points]
        time_ax.plot(workers, [r["compute_seconds"] for r in points], marker="o", label=label)
        speedups = [(r["workers_requested"], r["speedup"]) for r in points if r["speedup"]]
        if speedups:
            speed_ax.plot(*zip(*speedups), marker="o", label=label)
    all_workers = sorted({r["workers_requested"] for r in rows})
    if all_workers:
        speed_ax.plot(all_workers, all_workers, color="grey", linestyle=":", label="ideal (= workers)")
        parts = max(r["parts"] for r in rows)
        cores = max((r["cores_available"] for r in rows), default=0) or max(all_workers)
        speed_ax.plot(all_workers, [min(w, parts, cores) for w in all_workers], color="black",
                      linestyle="--", label=f"limit min(workers, parts={parts}, cores={cores})")
    time_ax.set(xlabel="workers", ylabel="compute time (s)", title="Compute time")
    speed_ax.set(xlabel="workers", ylabel="speedup over 1 worker", title="Speedup")
    for ax in (time_ax, speed_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_workers, [str(w) for w in all_workers])
        ax.grid(True, alpha=0.3)
    speed_ax.legend(fontsize=8)
    time_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig
