"""A program written for a real cluster: worker jobs of 2 cores and 2 GiB,
one worker process each; scale(2), a result, then scale(0) and no worker left."""
import time

from dask.distributed import Client
from dask_jobqueue import SLURMCluster

with SLURMCluster(cores=2, processes=1, memory="2GiB", walltime="00:05:00") as cluster, \
        Client(cluster) as client:
    cluster.scale(2)
    client.wait_for_workers(2, timeout=120)
    threads = sorted(client.nthreads().values())
    total = client.submit(sum, range(1000)).result()
    cluster.scale(0)
    deadline = time.monotonic() + 60
    while client.nthreads() and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"threads={threads} total={total} left={len(client.nthreads())}")
