# The ACENET Dask lesson's "Distributed Computations" script, as a learner
# types it (only cores, memory and walltime given to SLURMCluster). The lab's
# cluster must run it unmodified with `srun python compute-distributed.py`.
import time
wallClockTime=time.time()
import dask
from dask_jobqueue import SLURMCluster
from dask.distributed import Client

def elapsed(start):
  return str(time.time()-start)+"s"

def computePart(size):
  part=0
  for i in range(size):
    part=part+i
  return part

def main():

  size=40000000
  numParts=4
  numWorkers=1

  #set up cluster and workers
  cluster=SLURMCluster(cores=1,memory="256M",walltime='00:05:00')
  print(cluster.job_script())
  client=Client(cluster)
  cluster.scale(numWorkers)
  time.sleep(5)

  parts=[]
  for i in range(numParts):
    part=dask.delayed(computePart)(size)
    parts.append(part)
  sumParts=dask.delayed(sum)(parts)

  start=time.time()
  sumParts.compute()
  computeTime=elapsed(start)

  print()
  print("=======================================")
  print("Compute time: "+computeTime)
  print("=======================================")
  print()

  client.close()
  cluster.close()

if __name__=="__main__":
  main()
  wallClockTime=elapsed(wallClockTime)
  print()
  print("----------------------------------------")
  print("wall clock time:"+wallClockTime)
  print("----------------------------------------")
  print()
