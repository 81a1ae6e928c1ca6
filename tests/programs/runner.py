"""SLURMRunner: scheduler, client and workers are ranks of one `srun -n 4`;
they meet through a scheduler file in a folder every node shares (home)."""
import os

from dask.distributed import Client
from dask_jobqueue.slurm import SLURMRunner

with SLURMRunner(scheduler_file=os.path.expanduser("~/scheduler-{job_id}.json")) as runner:
    with Client(runner) as client:
        client.wait_for_workers(runner.n_workers)
        print(f"workers={len(client.nthreads())} total={client.submit(sum, range(1000)).result()}")
