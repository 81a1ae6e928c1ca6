"""The lesson's graph: a dask.delayed sum of partial sums, its kernels, the
schedulers that can run it, and its closed-form answer."""

from __future__ import annotations

import dask
import numpy as np

from .errors import WrongSum
from .inputs import words


def compute_part(size: int) -> int:
    """The lesson's computePart: a GIL-bound pure-Python loop, kept as written."""
    part = 0
    for i in range(size):
        part = part + i
    return part


def compute_part_numpy(size: int, chunk: int = 1 << 18) -> int:
    """The same sum with NumPy, whose kernels release the GIL: 64-bit
    accumulators, in chunks of 2 MB (fastest here, with threads too), into buffers made
    once (a fresh array per chunk costs more in page faults than the sum on a
    dask worker, whose memory is handed back to the system at once)."""
    base = np.arange(min(chunk, size), dtype=np.int64)
    numbers = np.empty_like(base)
    total = 0
    for start in range(0, size, chunk):
        n = min(chunk, size - start)
        np.add(base[:n], start, out=numbers[:n])
        total += int(numbers[:n].sum())
    return total


# Who runs the study's tasks, in the lesson's order (lab/inputs.txt): dask's
# in-process schedulers, then distributed workers on this machine, then SLURM jobs.
SCHEDULERS = words("SCHEDULERS")

# The study's kernels by name (lab/inputs.txt): each returns sum(range(size)).
KERNELS = {"python": compute_part, "numpy": compute_part_numpy}
assert tuple(KERNELS) == words("KERNELS"), "lab/inputs.txt names other kernels than graph.py has"
# `lab study` sizes each kernel so that one run at 1 worker lasts about as
# long as the pure-Python one (NumPy sums about 100x faster here): a kernel
# that runs 0.1 s measures start-up noise, not speedup.
SIZE_FACTOR = {"python": 1, "numpy": 100}


def expected_sum(size: int, parts: int) -> int:
    """The closed form of the study's answer: parts * (0 + 1 + ... + size-1)."""
    return parts * (size * (size - 1) // 2)


def build_graph(size: int, parts: int, kernel: str = "python"):
    """`parts` independent kernel tasks, summed by one more task."""
    pieces = [dask.delayed(KERNELS[kernel])(size) for _ in range(parts)]
    return dask.delayed(sum)(pieces)


def check_sum(total: int, size: int, parts: int) -> int:
    """Return the expected sum, or raise WrongSum (an overflow, a lost part...)."""
    expected = expected_sum(size, parts)
    if total != expected:
        raise WrongSum(
            f"wrong sum: got {total}, expected {expected} "
            f"(= {parts} * {size} * ({size} - 1) / 2)"
        )
    return expected
