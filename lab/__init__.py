"""dask-slurm-lab: the Dask lesson's study, on a laptop or on SLURM."""

__version__ = "0.1.0"

# Before any TLS connection: see the module (a CPython bug that breaks dask's TLS comms).
from . import openssl_queue  # noqa: E402,F401
