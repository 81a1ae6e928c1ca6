"""Speedup, parallel efficiency and the speedup limit of a sweep's rows."""

from __future__ import annotations

from .results import Row


def limit(workers: int, parts: int, cores: int) -> int:
    """The best speedup this run can have: no more parallel than its workers,
    its parts, or the CPU cores that really run them."""
    return max(1, min(workers, parts, cores))


def add_speedups(rows: list[Row]) -> list[Row]:
    """Fill speedup and efficiency against the 1-worker run of the same
    scheduler and kernel (None where the sweep has no such run)."""
    baseline = {(r.scheduler, r.kernel): r.compute_seconds for r in rows if r.workers_requested == 1 and r.correct}
    for row in rows:
        one = baseline.get((row.scheduler, row.kernel))
        if one and row.compute_seconds > 0:
            row.speedup = one / row.compute_seconds
            row.efficiency = row.speedup / row.workers_requested
        else:
            row.speedup = row.efficiency = None
        row.ideal_speedup = limit(row.workers_requested, row.parts, row.cores_available)
    return rows
