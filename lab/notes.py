"""Plain-language notes computed from a sweep's numbers, in the order of the
lesson's argument: the GIL (threads do not speed up pure Python, NumPy does),
processes and workers do, parts bound the speedup, cores bound it, and what
SLURM costs over local workers. Each note carries its numbers and their
spread; a result that contradicts the lesson is flagged UNEXPECTED with its
likely cause. A difference between two timings is called one only when their
ranges (min-max over the repeats) do not overlap."""

from __future__ import annotations

from collections import defaultdict

from .results import Row

# A speedup the lesson calls one: clearly above 1, beyond noise.
SPEEDS_UP = 1.3


def differ(a: Row, b: Row) -> bool:
    (a_low, a_high), (b_low, b_high) = a.span, b.span
    return a_high < b_low or b_high < a_low


def timing(row: Row) -> str:
    """'2.95 s (2.90-3.10)' or '2.95 s'."""
    low, high = row.span
    return f"{row.compute_seconds:.2f} s" + (f" ({low:.2f}-{high:.2f})" if high > low else "")


def notes(rows: list[Row]) -> list[str]:
    said: list[str] = []
    series: dict[tuple[str, str], dict[int, Row]] = defaultdict(dict)
    for row in rows:
        series[(row.scheduler, row.kernel)][row.workers_requested] = row

    for row in rows:
        if not row.correct:
            said.append(f"WRONG SUM with {row.scheduler}/{row.kernel} at "
                        f"{row.workers_requested} workers: an overflow or a lost part")

    def best(scheduler: str, kernel: str) -> tuple[float, Row, Row] | None:
        """The best speedup over 1 worker, its row, and the 1-worker row; None
        without a 1-worker row and another to compare with."""
        by_workers = series.get((scheduler, kernel), {})
        points = [(r.speedup or 0, w) for w, r in by_workers.items() if w > 1]
        if 1 not in by_workers or not points:
            return None
        speedup, at = max(points)
        return speedup, by_workers[at], by_workers[1]

    def numbers(speedup: float, row: Row, one: Row) -> str:
        return (f"{speedup:.2f}x at {row.workers_requested} workers: {timing(row)} against "
                f"{timing(one)} at 1")

    # 1. The GIL.
    found = best("threads", "python")
    if found and found[0] < SPEEDS_UP:
        said.append(f"threads do not speed up the pure-Python kernel ({numbers(*found)}): "
                    "the GIL lets one thread run Python at a time")
    elif found:
        said.append(f"UNEXPECTED: threads sped up the pure-Python kernel ({numbers(*found)}); "
                    "the lesson expects the GIL to prevent it: is the kernel the lesson's pure-Python loop?")
    found = best("threads", "numpy")
    if found and found[0] >= SPEEDS_UP:
        said.append(f"threads do speed up the NumPy kernel ({numbers(*found)}): "
                    "NumPy releases the GIL")

    # 2. Processes and workers escape it.
    for scheduler, what in (("processes", "processes"), ("local", "LocalCluster workers"),
                            ("slurm", "SLURM workers")):
        found = best(scheduler, "python")
        if not found:
            continue
        if found[0] >= SPEEDS_UP:
            said.append(f"{what} do speed up the pure-Python kernel ({numbers(*found)}): "
                        "each worker is a process with a GIL of its own")
        else:
            said.append(f"UNEXPECTED: {what} did not speed up the pure-Python kernel "
                        f"({numbers(*found)}); likely cause: the workers share fewer cores "
                        "than there are of them (limit column), or the parts do not reach every worker")

    # 3. Parts bound the speedup, said once for every series it shows in.
    capped = defaultdict(list)
    for (scheduler, kernel), by_workers in sorted(series.items()):
        parts = next(iter(by_workers.values())).parts
        at_parts = by_workers.get(parts)
        more = [w for w in sorted(by_workers) if w > parts]
        if at_parts and more and not any(by_workers[w].compute_seconds < 0.9 * at_parts.compute_seconds
                                         for w in more):
            capped[parts].append(f"{scheduler}/{kernel}")
    for parts, names in sorted(capped.items()):
        said.append(f"more than {parts} workers are no faster than {parts}: there are only {parts} parts "
                    f"({', '.join(names)})")

    # 4. Cores bound it.
    cores = max((r.cores_available for r in rows if r.cores_available), default=0)
    if cores and any(r.workers_requested > cores for r in rows):
        said.append(f"only {cores} CPU cores here: speedup cannot pass {cores} on this machine, "
                    "and more workers than cores share them")

    # 5. What SLURM costs over local workers.
    local = {(r.kernel, r.workers_requested): r for r in rows if r.scheduler == "local"}
    same = []
    for row in rows:
        twin = local.get((row.kernel, row.workers_requested))
        if row.scheduler != "slurm" or not twin or twin.compute_seconds <= 0:
            continue
        if differ(row, twin):
            ratio = row.compute_seconds / twin.compute_seconds
            said.append(f"SLURM workers took {ratio:.2f}x the compute time of local workers "
                        f"at {row.workers_requested} workers ({row.kernel}): {timing(row)} against "
                        f"{timing(twin)}")
        else:
            same.append(f"{row.workers_requested} ({row.kernel})")
    if same:
        said.append("SLURM and local workers took the same compute time within the spread of the "
                    f"repeats at {', '.join(same)} workers")
    return said
