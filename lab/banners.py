"""What `lab run` prints: the lesson's banners, plus what a learner needs to
read them (`lab run` and job mode's client alike)."""

from __future__ import annotations

import json
import sys

from .results import RunResult, write_atomic


def banner(char: str, width: int) -> str:
    return char * width


def format_run(result: RunResult) -> str:
    lines = [
        f"backend: {result.backend}   parts: {result.parts}   size: {result.size}",
        f"workers: {result.workers_requested} requested, {result.workers_connected} connected"
        f" (in {result.startup_seconds:.1f}s)",
    ]
    if result.workers:
        lines.append(f"  {'worker':<7}{'node':<16}{'slurm job':<11}user")
        for number, worker in enumerate(result.workers, 1):
            lines.append(f"  {number:<7}{worker.node:<16}{worker.job or '-':<11}{worker.user}")
    if result.workers_lost:
        lost = ", ".join(f"{w.node} (job {w.job or '-'})" for w in result.workers_lost)
        lines.append(f"workers lost during the compute: {len(result.workers_lost)}: {lost}")
    verdict = "correct" if result.correct else f"WRONG, expected {result.expected}"
    lines += [
        banner("=", 39),
        f"Compute time: {result.compute_seconds:.2f}s",
        banner("=", 39),
        f"sum: {result.total} ({verdict})",
        banner("-", 40),
        f"wall clock time:{result.wall_seconds:.2f}s",
        banner("-", 40),
    ]
    return "\n".join(lines)


def report(result: RunResult, json_path=None, command: str = "lab run") -> int:
    """Print a run's result as the lesson does (and write it as JSON); its exit status."""
    print(format_run(result), flush=True)
    if json_path:
        write_atomic(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.correct:
        print(f"{command}: error: wrong sum {result.total}, expected {result.expected}", file=sys.stderr)
        return 1
    if result.leftover_jobs:
        print(f"{command}: error: worker jobs left in squeue: {' '.join(result.leftover_jobs)}", file=sys.stderr)
        return 1
    return 0
