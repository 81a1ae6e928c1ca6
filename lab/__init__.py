"""dask-slurm-lab: the Dask lesson's study, on a laptop or on SLURM."""

from importlib.metadata import version

# Named once, in pyproject.toml (the images' tag too).
__version__ = version("dask-slurm-lab")

# Before any TLS connection: see the module (a CPython bug that breaks dask's TLS comms).
from . import openssl_queue  # noqa: E402,F401
