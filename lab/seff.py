"""`seff JOBID`: CPU and memory efficiency of a finished job, from sacct.

Debian 12 does not package Slurm's contrib seff; this reads the same
accounting data and prints the same report, so the lesson's GIL episode
(91.67% / 50% / 25% CPU efficiency with 1 / 2 / 4 CPUs) can be shown.
"""

from __future__ import annotations

import re

from . import slurm
from .errors import SlurmError
from .validate import whole_number

FIELDS = "JobID,JobName,User,Group,State,ExitCode,AllocCPUS,NNodes,ElapsedRaw,TotalCPU,AllocTRES,MaxRSS,Cluster"

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes in a sacct size such as 123456K, 256M or 2Gn (n/c suffixes ignored)."""
    match = re.fullmatch(r"([\d.]+)([KMGT]?)[nc]?", text.strip())
    if not match:
        return 0
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def cpu_share(cpu_seconds: float, cores: int, elapsed: float) -> float:
    """CPU efficiency in percent: CPU time over cores x elapsed (seff's)."""
    return 100.0 * cpu_seconds / (cores * elapsed) if cores * elapsed else 0.0


def cpu_efficiency(job_ids: list[str]) -> float | None:
    """CPU efficiency of worker jobs together, from accounting (None: not final yet, or unknown)."""
    cpu = core_seconds = 0.0
    for row in slurm.accounting(job_ids, ["TotalCPU", "ElapsedRaw", "AllocCPUS", "State"], "-X"):
        if row["State"] in ("RUNNING", "PENDING"):
            return None
        cpu += slurm.seconds(row["TotalCPU"])
        core_seconds += float(row["ElapsedRaw"] or 0) * int(row["AllocCPUS"] or 0)
    # Worker jobs end by scancel; where Slurm then records no CPU time (a node
    # whose slurmstepd cannot read the job's /proc files), say unknown, not 0%.
    if not core_seconds or cpu < 0.1:
        return None
    return cpu_share(cpu, 1, core_seconds)


def efficiency(rows: list[dict]) -> dict:
    """Summarise sacct rows of one job (allocation first, then its steps)."""
    job = rows[0]
    cores = int(job["AllocCPUS"] or 0)
    elapsed = float(job["ElapsedRaw"] or 0)
    cpu = slurm.seconds(job["TotalCPU"])
    max_rss = max((parse_size(r["MaxRSS"]) for r in rows), default=0)
    # AllocTRES, not ReqMem: Slurm 22.05's sacct garbles ReqMem ("16?").
    tres = slurm.tres(job["AllocTRES"])
    requested = parse_size(tres.get("mem", ""))
    core_walltime = cores * elapsed
    return {
        "job": job["JobID"],
        "cluster": job["Cluster"],
        "user": job["User"],
        "group": job["Group"],
        "state": job["State"],
        "exit_code": job["ExitCode"],
        "nodes": int(job["NNodes"] or 0),
        "cores": cores,
        "cpu_seconds": cpu,
        "wall_seconds": elapsed,
        "cpu_efficiency": cpu_share(cpu, cores, elapsed),
        "core_walltime_seconds": core_walltime,
        "max_rss_bytes": max_rss,
        "requested_memory_bytes": requested,
        "memory_efficiency": 100.0 * max_rss / requested if requested else 0.0,
    }


def format_report(eff: dict) -> str:
    mb = 1024**2
    return "\n".join([
        f"Job ID: {eff['job']}",
        f"Cluster: {eff['cluster']}",
        f"User/Group: {eff['user']}/{eff['group']}",
        f"State: {eff['state']} (exit code {eff['exit_code'].split(':')[0]})",
        f"Nodes: {eff['nodes']}",
        f"Cores per node: {eff['cores'] // max(eff['nodes'], 1)}",
        f"CPU Utilized: {hms(eff['cpu_seconds'])}",
        f"CPU Efficiency: {eff['cpu_efficiency']:.2f}% of {hms(eff['core_walltime_seconds'])} core-walltime",
        f"Job Wall-clock time: {hms(eff['wall_seconds'])}",
        f"Memory Utilized: {eff['max_rss_bytes'] / mb:.2f} MB",
        f"Memory Efficiency: {eff['memory_efficiency']:.2f}% of {eff['requested_memory_bytes'] / mb:.2f} MB",
    ])


def command(job: str) -> int:
    """`lab seff JOBID` (a step's id names its job)."""
    print(format_report(efficiency(query(str(whole_number("JOBID", job.split(".")[0], 1))))))
    return 0


def query(job_id: str) -> list[dict]:
    rows = slurm.accounting([job_id], FIELDS.split(","), "--units=K")
    if not rows:
        raise SlurmError(f"sacct knows no job {job_id}")
    return rows
