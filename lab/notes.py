"""Plain-language notes computed from a sweep's numbers. A difference between
two timings is called one only when their ranges (min-max over the repeats)
do not overlap: with one sample a point cannot tell noise from a difference."""

from __future__ import annotations

from collections import defaultdict


def span(row: dict) -> tuple[float, float]:
    """A row's fastest and slowest compute time (one sample: both the same)."""
    return row.get("compute_min", row["compute_seconds"]), row.get("compute_max", row["compute_seconds"])


def differ(a: dict, b: dict) -> bool:
    (a_low, a_high), (b_low, b_high) = span(a), span(b)
    return a_high < b_low or b_high < a_low


def notes(rows: list[dict]) -> list[str]:
    said: list[str] = []
    series = defaultdict(dict)
    for row in rows:
        series[(row["scheduler"], row["kernel"])][row["workers_requested"]] = row

    for row in rows:
        if not row["correct"]:
            said.append(f"WRONG SUM with {row['scheduler']}/{row['kernel']} at "
                        f"{row['workers_requested']} workers: an overflow or a lost part")

    cores = max((r["cores_available"] for r in rows if r["cores_available"]), default=0)
    if cores and any(r["workers_requested"] > cores for r in rows):
        said.append(f"only {cores} CPU cores here: speedup cannot pass {cores} on this machine")

    # More workers than parts: said once, for every series it shows in.
    capped = defaultdict(list)
    for (scheduler, kernel), by_workers in sorted(series.items()):
        parts = next(iter(by_workers.values()))["parts"]
        at_parts = by_workers.get(parts)
        more = [w for w in sorted(by_workers) if w > parts]
        if at_parts and more and not any(by_workers[w]["compute_seconds"] < 0.9 * at_parts["compute_seconds"]
                                         for w in more):
            capped[parts].append(f"{scheduler}/{kernel}")
    for parts, names in sorted(capped.items()):
        said.append(f"more than {parts} workers are no faster than {parts}: there are only {parts} parts "
                    f"({', '.join(names)})")

    def best(scheduler: str, kernel: str) -> tuple[float, int]:
        points = [(r["speedup"] or 0, w) for w, r in series.get((scheduler, kernel), {}).items() if w > 1]
        return max(points, default=(0, 0))

    threads_python, _ = best("threads", "python")
    if threads_python and threads_python < 1.3:
        said.append("the threaded scheduler does not speed up the pure-Python kernel "
                    f"(best {threads_python:.2f}x): the GIL lets one thread run Python at a time")
    threads_numpy, at = best("threads", "numpy")
    if threads_numpy >= 1.3:
        said.append(f"threads do speed up the NumPy kernel ({threads_numpy:.2f}x at {at} workers): "
                    "NumPy releases the GIL")
    for scheduler, what in (("processes", "processes"), ("local", "LocalCluster workers"),
                            ("slurm", "SLURM workers")):
        speedup, at = best(scheduler, "python")
        if speedup >= 1.3:
            said.append(f"{what} do speed up the pure-Python kernel ({speedup:.2f}x at {at} workers): "
                        "each worker is a process with a GIL of its own")
        elif speedup:
            said.append(f"{what} did not speed up the pure-Python kernel here (best {speedup:.2f}x): "
                        "see the limit column and the cores they share")

    local = {(r["kernel"], r["workers_requested"]): r for r in rows if r["scheduler"] == "local"}
    same = []
    for row in rows:
        twin = local.get((row["kernel"], row["workers_requested"]))
        if row["scheduler"] != "slurm" or not twin or twin["compute_seconds"] <= 0:
            continue
        if differ(row, twin):
            ratio = row["compute_seconds"] / twin["compute_seconds"]
            said.append(f"SLURM workers took {ratio:.2f}x the compute time of local workers "
                        f"at {row['workers_requested']} workers ({row['kernel']})")
        else:
            same.append(f"{row['workers_requested']} ({row['kernel']})")
    if same:
        said.append("SLURM and local workers took the same compute time within the spread of the "
                    f"repeats at {', '.join(same)} workers")
    return said
