"""dask-slurm-lab: the Dask lesson's study, on a laptop or on SLURM."""

# The lab's version, named once: pyproject.toml, make and the images' tag read
# it here. (Not importlib.metadata: every Python of the image imports lab, see
# below, and that lookup would cost each interpreter 50 ms.)
__version__ = "0.1.0"

# Before any TLS connection: see the module (a CPython bug that breaks dask's TLS comms).
from . import openssl_queue  # noqa: E402,F401
