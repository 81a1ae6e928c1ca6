"""A templated lesson's site values for this cluster, and a snippet library
written from a dry run (`lab lesson --snippets DIR`).

HPC Carpentry's lessons render `{{ site.remote.prompt }}`, `{{ site.sched.* }}`
and `{% include {{ site.snippets }}/....snip %}` from `_config.yml`, whose
values each site copies from `_includes/snippets_library/<site>/_config_options.yml`.
A dry run renders the lesson with this cluster's values (the learner, the
login node, a compute node, the partition), so its commands are this cluster's;
`--snippets` then writes `snippets_library/<cluster>_slurm/`: those values and
each `.snip` output block as this cluster printed it.
"""

from __future__ import annotations

import getpass
import re
import socket
from pathlib import Path

import yaml

from . import slurm
from .errors import SlurmError
from .results import write_atomic


def _first(*cmd: str) -> str:
    """The first word a Slurm command prints, '' when there is no answer."""
    try:
        words = slurm.run(*cmd, timeout=10).split()
    except SlurmError:
        return ""
    return words[0] if words else ""


def cluster_values() -> dict:
    """This cluster's values for a lesson's `site` (those a lesson's _config.yml sets per site)."""
    user, host = getpass.getuser(), socket.gethostname().split(".")[0]
    node = _first("sinfo", "-h", "-N", "-o", "%N") or host
    partition = _first("sinfo", "-h", "-o", "%P").rstrip("*")
    name = ""
    try:
        name = re.search(r"^ClusterName\s*=\s*(\S+)", slurm.run("scontrol", "show", "config", timeout=10),
                         re.M).group(1)  # type: ignore[union-attr]
    except (SlurmError, AttributeError):
        pass
    library = f"{re.sub(r'[^A-Za-z0-9]+', '_', name or host)}_slurm"
    return {
        "snippets_name": library,
        "remote": {"name": name or host, "login": socket.getfqdn(), "host": host, "node": node,
                   "location": socket.getfqdn(), "homedir": str(Path.home().parent), "user": user,
                   "module_python3": "python",  # the site's Lmod name (this cluster's: module load python)
                   "prompt": f"[{user}@{host} ~]$", "bash_shebang": "#!/bin/bash"},
        "sched": {"name": "Slurm", "submit": {"name": "sbatch", "options": ""},
                  "queue": {"debug": partition, "testing": partition}, "status": "squeue",
                  "flag": {"user": f"-u {user}", "interactive": "", "histdetail": "-l -j", "name": "-J",
                           "time": "-t", "queue": "-p", "nodes": "-N", "tasks": "-n"},
                  "del": "scancel", "interactive": "srun", "info": "sinfo", "comment": "#SBATCH",
                  "hist": f"sacct -u {user}", "hist_filter": ""},
    }


def write_library(folder: Path, site: dict, played: list) -> Path:
    """snippets_library/<name>/ under folder: _config_options.yml (this
    cluster's values) and each snippet's output block as this run printed it."""
    name = site.get("snippets_name") or "lab_slurm"
    library = folder / "snippets_library" / name
    library.mkdir(parents=True, exist_ok=True)
    options = {key: value for key, value in site.items() if key in ("local", "remote", "sched")}
    write_atomic(library / "_config_options.yml",
                 f"# This cluster's values, written by lab lesson --snippets.\n---\n\n"
                 f"snippets: \"/snippets_library/{name}\"\n\n" + yaml.safe_dump(options, sort_keys=False))
    for step in played:
        if step.snippet and step.status in ("ok", "failed"):
            (library / step.snippet).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(library / step.snippet, "```\n" + "".join(f"{x}\n" for x in step.output) + "```\n"
                         "{: .output}\n")
    return library
