"""The lesson's study: a dask.delayed graph of pure-Python partial sums."""

from __future__ import annotations

import dask


def compute_part(size: int) -> int:
    """The lesson's computePart: a GIL-bound pure-Python loop, kept as written."""
    part = 0
    for i in range(size):
        part = part + i
    return part


def expected_sum(size: int, parts: int) -> int:
    """The closed form of the study's answer: parts * (0 + 1 + ... + size-1)."""
    return parts * (size * (size - 1) // 2)


def build_graph(size: int, parts: int):
    """`parts` independent compute_part tasks, summed by one more task."""
    pieces = [dask.delayed(compute_part)(size) for _ in range(parts)]
    return dask.delayed(sum)(pieces)


class WrongSum(RuntimeError):
    """The study computed a sum that differs from the closed form."""


def check_sum(total: int, size: int, parts: int) -> int:
    """Return the expected sum, or raise WrongSum (an overflow, a lost part...)."""
    expected = expected_sum(size, parts)
    if total != expected:
        raise WrongSum(
            f"wrong sum: got {total}, expected {expected} "
            f"(= {parts} * {size} * ({size} - 1) / 2)"
        )
    return expected
