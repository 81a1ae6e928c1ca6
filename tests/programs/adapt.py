"""A program written for a real cluster: an adaptive SLURMCluster grows for
work and shrinks back to its minimum when the work is done."""
import time

from dask.distributed import Client
from dask_jobqueue import SLURMCluster


def slow(x):
    time.sleep(2)
    return x


with SLURMCluster(cores=1, memory="256M", walltime="00:05:00") as cluster, Client(cluster) as client:
    cluster.adapt(minimum=0, maximum=4, interval="500ms", wait_count=2)
    futures = client.map(slow, range(16))
    peak = 0
    while not all(f.done() for f in futures):
        peak = max(peak, len(client.nthreads()))
        time.sleep(0.2)
    total = sum(client.gather(futures))
    del futures  # results held on a worker keep it alive: let them go
    deadline = time.monotonic() + 90
    while client.nthreads() and time.monotonic() < deadline:
        time.sleep(0.5)
    print(f"total={total} peak={peak} left={len(client.nthreads())}")
