# A SLURMCluster script of the kind the Dask lessons have learners write,
# given only cores, memory and walltime (written for these tests, not taken
# from a lesson): it prints its worker job script, the compute time and the
# wall-clock time. The cluster must run it unmodified: srun python compute-distributed.py
import time

started = time.time()

import dask
from dask.distributed import Client
from dask_jobqueue import SLURMCluster


def partial_sum(count):
    total = 0
    for number in range(count):
        total += number
    return total


if __name__ == "__main__":
    cluster = SLURMCluster(cores=1, memory="256M", walltime="00:05:00")
    print(cluster.job_script())
    client = Client(cluster)
    cluster.scale(1)
    client.wait_for_workers(1, timeout=120)

    parts = [dask.delayed(partial_sum)(4_000_000) for _ in range(4)]
    total = dask.delayed(sum)(parts)
    compute_start = time.time()
    result = total.compute()
    print(f"sum: {result}")
    print(f"Compute time: {time.time() - compute_start}s")

    client.close()
    cluster.close()
    print(f"wall clock time:{time.time() - started}s")
