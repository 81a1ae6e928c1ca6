import math

import numpy as np
import pytest

from lab.errors import WrongSum
from lab.graph import build_graph, check_sum, compute_part, expected_sum


@pytest.mark.parametrize("size", [0, 1, 2, 10, 12345])
def test_compute_part_is_the_lessons_loop(size):
    assert compute_part(size) == sum(range(size))


@pytest.mark.parametrize("size, parts", [(1, 1), (10, 4), (12345, 3), (40_000_000, 4), (10**10, 10_000)])
def test_expected_sum_is_the_sum_of_the_parts(size, parts):
    # Checked independently of the formula: the loop itself where it is quick,
    # else the number of pairs, C(size, 2), which sum(range(size)) counts.
    truth = sum(range(size)) if size < 10**6 else math.comb(size, 2)
    assert expected_sum(size, parts) == parts * truth


def test_graph_sums_all_parts():
    total = build_graph(1000, 7).compute(scheduler="synchronous")
    assert total == check_sum(total, 1000, 7) == 7 * 499500


def test_graph_parts_are_distinct_tasks():
    # Same arguments, yet one task each: otherwise dask would run one part once.
    graph = build_graph(10, 4)
    assert len([k for k in dict(graph.dask) if str(k).startswith("compute_part")]) == 4


def test_c_int_overflow_of_the_lessons_cython_variant_is_caught():
    # `cdef int part` wraps at 2**31: the lesson's Cython answer for size=40e6.
    size, parts = 40_000_000, 4
    part = np.int64(size) * (size - 1) // 2
    wrapped = int(np.array(part).astype(np.int32)) * parts
    with pytest.raises(WrongSum, match="wrong sum"):
        check_sum(wrapped, size, parts)


def test_a_lost_part_is_caught():
    with pytest.raises(WrongSum, match=r"expected 3199999920000000"):
        check_sum(3 * expected_sum(40_000_000, 1), 40_000_000, 4)


def test_prep_compares_this_site_with_the_lesson():
    from lab.prep import compare_with_lesson

    text = compare_with_lesson({1: 4.0, 2: 2.1, 4: 2.0, 8: 2.05}, parts=4, cores=2, queue_wait=0.5)
    lines = text.splitlines()
    assert lines[0].startswith("| numWorkers | Compute time (s), here | speedup, here | limit here |")
    assert lines[2] == "| 1 | 4.00 | 1.00 | 1 | 12.33 | 1.00 |"
    assert lines[4] == "| 4 | 2.00 | 2.00 | 2 | 3.45 | 3.57 |"
    assert "past 2 workers this site cannot speed up where the lesson (with 4 parts on its own cores) " \
        "reached 3.57x at 4" in text
    assert "queue" not in text
    busy = compare_with_lesson({1: 4.0, 2: 2.0}, parts=4, cores=8, queue_wait=42)
    assert "as in the lesson" in busy and "worker jobs waited 42 s in the queue" in busy
