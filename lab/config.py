"""The lab's settings live in dask's config system, next to dask-jobqueue's.

Precedence, highest first: command-line flags, DASK_* environment variables,
YAML files (~/.config/dask, /etc/dask), then the defaults in lab/lab.yaml.
"""

from __future__ import annotations

from pathlib import Path

import dask.config

# dask-jobqueue registers its own defaults (cores: null, ...) on import; ours
# are registered after, so they replace those defaults but never a user's value.
import dask_jobqueue  # noqa: F401
import yaml

from .errors import UnknownSite

DEFAULTS_FILE = Path(__file__).with_name("lab.yaml")
SITES_DIR = Path(__file__).with_name("sites")
dask.config.update_defaults(yaml.safe_load(DEFAULTS_FILE.read_text()))


def sites() -> list[str]:
    """Names of the site profiles shipped in lab/sites/."""
    return sorted(path.stem for path in SITES_DIR.glob("*.yaml"))


def use_site(name: str) -> Path:
    """Load a site profile (a shipped name or a YAML file's path) into dask config.

    It overrides YAML files and defaults; DASK_* variables and flags still win.
    """
    path = SITES_DIR / f"{name}.yaml"
    if not path.is_file():
        path = Path(name).expanduser()
    if not name or not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise UnknownSite(f"unknown site {name!r}: use one of {', '.join(sites())} "
                          f"or the path of a site YAML file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UnknownSite(f"site file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise UnknownSite(f"site file {path} must hold a mapping of dask settings")
    dask.config.update(dask.config.config, values, priority="new")
    dask.config.update(dask.config.config, dask.config.collect_env(), priority="new")
    return path


def lab(key: str):
    """A `lab.*` setting, e.g. lab("worker-timeout")."""
    return dask.config.get(f"lab.{key}")


def slurm(key: str):
    """A `jobqueue.slurm.*` setting, e.g. slurm("memory")."""
    return dask.config.get(f"jobqueue.slurm.{key}")
