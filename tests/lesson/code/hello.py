import os

print(f"Hello from {os.environ.get('SLURMD_NODENAME', 'the login node')} in job {os.environ.get('SLURM_JOB_ID')}")
