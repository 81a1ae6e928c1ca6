"""The lab's settings live in dask's config system, next to dask-jobqueue's.

Precedence, highest first: command-line flags, DASK_* environment variables,
YAML files (~/.config/dask, /etc/dask), then the defaults in lab/lab.yaml.
"""

from __future__ import annotations

from pathlib import Path

import dask.config
import yaml

# dask-jobqueue registers its own defaults (cores: null, ...) on import; ours
# are registered after, so they replace those defaults but never a user's value.
import dask_jobqueue  # noqa: F401

DEFAULTS_FILE = Path(__file__).with_name("lab.yaml")
dask.config.update_defaults(yaml.safe_load(DEFAULTS_FILE.read_text()))


def lab(key: str):
    """A `lab.*` setting, e.g. lab("worker-timeout")."""
    return dask.config.get(f"lab.{key}")


def slurm(key: str):
    """A `jobqueue.slurm.*` setting, e.g. slurm("memory")."""
    return dask.config.get(f"jobqueue.slurm.{key}")
