"""dask-jobqueue's own example: worker names built from a variable that the
job script's prologue sets (as a job array would, with SLURM_ARRAY_JOB_ID)."""
from dask.distributed import Client
from dask_jobqueue import SLURMCluster

with SLURMCluster(cores=1, memory="256M", name="test-$MY_ENV_VARIABLE",
                  job_script_prologue=["MY_ENV_VARIABLE=my-env-variable-value"]) as cluster, \
        Client(cluster) as client:
    cluster.scale(jobs=2)
    client.wait_for_workers(2, timeout=120)
    print("names=" + ",".join(sorted(w["id"] for w in client.scheduler_info()["workers"].values())))
