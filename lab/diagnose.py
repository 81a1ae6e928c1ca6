"""Why Slurm did what it did, and what to do: the one table from a worker
job's end state to advice, the one table from a Slurm client's error to the
piece it lacks, and the one hint for a machine without a client. Used by the
workers, `lab doctor` and `lab job`."""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import apptainer

# Folders no compute node shares with the login node: a job submitted from
# one cannot write its output file there.
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")

# Which flag or setting raises a worker job's limit.
RAISE = {"walltime": "raise --walltime or jobqueue.slurm.walltime",
         "memory": "raise --memory or jobqueue.slurm.memory"}
# A worker job's end state (sacct's State), and what to change.
ADVICE = {
    "TIMEOUT": f"the jobs hit their walltime limit: {RAISE['walltime']}",
    "OUT_OF_MEMORY": f"the jobs ran out of memory: {RAISE['memory']}",
    "NODE_FAIL": "their node stopped answering (a stopped or killed node); run again",
    "CANCELLED": "someone or something cancelled them (scancel, a node's end, the site's policy)",
    "FAILED": "see the job's output file (slurm-<job>.out, or jobqueue.slurm.log-directory)",
}
# Workers restarted by their nanny for going over the memory limit.
OVER_MEMORY = "workers went over their memory limit"


def advice(state: str) -> str:
    return ADVICE.get(state, "see sacct and the worker logs")


def ended(rows: list[dict], worker: str) -> str:
    """Why worker jobs ended before their workers connected, from their sacct
    rows (JobID, State, ExitCode, WorkDir). `worker` is the command their job
    script starts the worker with."""
    if not rows:
        return "accounting has no record of them yet; see sacct and the worker logs"
    parts = []
    for state in sorted({row["State"].split()[0] for row in rows}):
        same = [row for row in rows if row["State"].split()[0] == state]
        codes = ", ".join(sorted({row["ExitCode"] for row in same}))
        # Accounting may not have the folder yet a moment after the job ended;
        # lab submitted the jobs from its own.
        folders = sorted({row.get("WorkDir") or os.getcwd() for row in same})
        local = [f for f in folders if f == "/" or f in NODE_LOCAL or f.startswith(tuple(p + "/" for p in NODE_LOCAL))]
        if state == "FAILED" and local:
            why = (f"submitted from {', '.join(local)}, a folder the compute nodes do not share, so the job's "
                   "output file cannot be opened; submit from a folder the compute nodes share, such as your home")
        elif state == "FAILED" and codes == "127:0":
            why = (f"the worker command was not found on the compute nodes; set jobqueue.slurm.python to a "
                   f"python the nodes have (now {worker})")
        else:
            why = advice(state)
        parts.append(f"{state} ({' '.join(row['JobID'] for row in same)}; exit code {codes}): {why}")
    return "; ".join(parts)


def lost(states: dict[str, list[str]], restarted_for_memory: bool, limits: Mapping[str, str]) -> str:
    """Why every worker went away during a compute, from the jobs' states,
    naming the limit they hit (`limits`: the jobs' walltime and memory)."""
    if "TIMEOUT" in states:
        return (f"worker job(s) {', '.join(states['TIMEOUT'])} hit their walltime limit "
                f"({limits.get('walltime')}): {RAISE['walltime']}")
    if "OUT_OF_MEMORY" in states:
        return (f"worker job(s) {', '.join(states['OUT_OF_MEMORY'])} ran out of memory "
                f"({limits.get('memory')}): {RAISE['memory']}")
    if restarted_for_memory:
        return (f"{OVER_MEMORY} ({limits.get('memory') or 'their limit'}) and were restarted until none was left: "
                f"{RAISE['memory']}")
    seen = ", ".join(f"{state}: {' '.join(jobs)}" for state, jobs in sorted(states.items()))
    return f"all workers were lost{f' ({seen})' if seen else ''}; see squeue, sacct and the worker logs"


# What a Slurm client inside a container needs from the host; bin/lab-apptainer binds it.
CLIENT_BINDS = ("the Slurm commands (sbatch, squeue, scancel, sacct, sinfo), their libslurm*.so, "
                "/etc/slurm and the munge socket (/run/munge)")

# What a Slurm client's error says, the piece it lacks, and the fix. Inside a
# container these are the binds bin/lab-apptainer makes; on a host, the install.
CLIENT_ERRORS = [
    # "libc.so.6: version `GLIBC_2.38' not found (required by sbatch)"
    ("glibc_", "a glibc at least as new as the host's Slurm client's (this image's is older)",
     "use job mode (lab job: no Slurm client in the image), or an image on a newer Debian "
     "(docs/site.md: the glibc rule)"),
    ("error while loading shared libraries", "a library the Slurm commands link",
     "bind the host's Slurm libraries (bin/lab-apptainer does)"),
    ("invalid user for slurmuser", "the SlurmUser of slurm.conf in passwd",
     "bind the host's /etc/passwd and /etc/group (bin/lab-apptainer does)"),
    ("plugin", "a Slurm plugin or a library it loads (libmunge for auth/munge)",
     "bind the host's PluginDir (scontrol show config) and the libraries its plugins load "
     "(bin/lab-apptainer does)"),
    ("munge", "the munge socket (/run/munge)", "bind /run/munge (bin/lab-apptainer does)"),
    ("configuration", "slurm.conf", "bind /etc/slurm, $SLURM_CONF's folder or /run/slurm/conf (configless)"),
    ("slurm.conf", "slurm.conf", "bind /etc/slurm, $SLURM_CONF's folder or /run/slurm/conf (configless)"),
    ("unable to contact slurm controller", "the controller",
     "check that slurmctld runs and this machine reaches it (scontrol ping)"),
]


def client_error(message: str) -> str:
    """The missing piece a Slurm client's error names, with its fix."""
    lower = message.lower()
    for pattern, piece, fix in CLIENT_ERRORS:
        if pattern in lower:
            return f"missing {piece}: {fix}"
    return "see the message above"


def no_client() -> str:
    """What to do on a machine with no Slurm client (sbatch)."""
    if apptainer.image():
        return (f"inside Apptainer the host's Slurm client must be bound in: run lab through "
                f"bin/lab-apptainer, or add --bind for {CLIENT_BINDS}")
    return "run on the cluster's login node (make run, make shell), or load its Slurm module (module load slurm)"
