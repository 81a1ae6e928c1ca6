"""dask-slurm-lab: the Dask lesson's study, on a laptop or on SLURM."""

__version__ = "0.1.0"
