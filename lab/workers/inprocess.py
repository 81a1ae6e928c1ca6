"""dask's in-process schedulers (synchronous, threads, processes) as Workers."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from ..results import Placement
from ..spec import RunSpec
from . import Waited, Workers, warm, where


class InProcess(Workers):
    """A thread pool, or a process pool whose processes have started and
    imported what a task needs (dask would otherwise start a fresh process
    pool inside every timed compute)."""

    def __init__(self, spec: RunSpec):
        super().__init__(spec)
        self.pool: Executor | None = None
        self.count = 0

    def scale(self, count: int) -> None:
        self.count = count
        if self.spec.scheduler == "synchronous":
            return
        if self.spec.scheduler == "threads":
            self.pool = ThreadPoolExecutor(count)
        else:
            import dask

            context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
            self.pool = ProcessPoolExecutor(count, mp_context=context)
        # Each task holds its worker a moment, so every one of the pool's workers starts.
        list(self.pool.map(_warm_worker, range(count)))

    def wait(self, count: int, timeout: float, say) -> Waited:
        return Waited(connected=self.count, submit_seconds=0.0)

    def placements(self) -> dict[str, Placement]:
        here = Placement(**where())
        return {f"{self.spec.scheduler}-{number}": here for number in range(self.count)}

    def compute(self, graph) -> int:
        """chunksize=1: dask's process scheduler otherwise sends ready tasks in
        batches of 6 (its default, for many small tasks), so the study's few
        long parts would all run in one process, one after the other."""
        return graph.compute(scheduler=self.spec.scheduler, num_workers=self.count, pool=self.pool, chunksize=1)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _warm_worker(_: int) -> None:
    warm()
    time.sleep(0.2)
