"""Small, typed wrappers around the Slurm commands the lab needs."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import time

from . import apptainer
from .diagnose import client_error, no_client
from .errors import SlurmError

TIMEOUT = 30  # seconds; a Slurm command that takes longer is an error, not a hang
# Seconds to wait before asking again when the controller answers "rate limit
# exceeded" (SlurmctldParameters=rl_enable, as sites with many users set); None: give up.
RATE_LIMITED = (1.0, 2.0, 4.0, None)
# sbatch takes the account from SBATCH_ACCOUNT over a script's #SBATCH -A
# (srun from SLURM_ACCOUNT, salloc from SALLOC_ACCOUNT), and Alliance sites
# have learners set them in their .bashrc: lab's own account goes there too.
ACCOUNT_VARIABLES = ("SBATCH_ACCOUNT", "SLURM_ACCOUNT", "SALLOC_ACCOUNT")


def account(placement: tuple[str, ...]) -> str | None:
    """The account a run's placement names (--account=...), if any."""
    return next((flag.split("=", 1)[1] for flag in placement if flag.startswith("--account=")), None)


def environment(placement: tuple[str, ...]) -> dict[str, str] | None:
    """The environment lab's submissions run in: the account it places its
    jobs on in every account variable (a learner's own would win over its
    #SBATCH -A); None (this process's own) when it names none."""
    named = account(placement)
    return None if named is None else {**os.environ, **dict.fromkeys(ACCOUNT_VARIABLES, named)}


def seconds(text: str, empty: float = 0.0) -> float:
    """Seconds in a Slurm time or duration: M, M:S, H:M:S, D-H, D-H:M,
    D-H:M:S (time limits), [D-][HH:]MM:SS[.mmm] (sacct); inf for UNLIMITED,
    `empty` for no value (0 for a duration; a time limit's caller says inf)."""
    text = text.strip().lower()
    if not text:
        return empty
    if text in ("infinite", "unlimited"):
        return float("inf")
    days = 0.0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = float(day_text)
        parts = [float(p) for p in text.split(":")]
        parts += [0.0] * (3 - len(parts))  # D-H, D-H:M
    else:
        parts = [float(p) for p in text.split(":")]
        if len(parts) == 1:  # M: minutes
            parts = [0.0, parts[0], 0.0]
        parts = [0.0] * (3 - len(parts)) + parts  # M:S
    hours, minutes, secs = parts
    return days * 86400 + hours * 3600 + minutes * 60 + secs


def _hint() -> str:
    return f"; {no_client()}" if apptainer.image() else ""


def run(*cmd: str, timeout: float = TIMEOUT, stdin: str | None = None, stderr_too: bool = False,
        env: dict[str, str] | None = None) -> str:
    """A Slurm command's output (with stderr_too, its stderr after: sbatch
    --test-only answers there); SlurmError with every line of its message."""
    if shutil.which(cmd[0]) is None:
        raise SlurmError(f"{cmd[0]} not found: this machine has no Slurm client on PATH{_hint()}")
    for pause in RATE_LIMITED:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin, env=env)
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{' '.join(cmd)} did not answer within {timeout}s") from None
        if done.returncode == 0 or "rate limit" not in (done.stderr + done.stdout).lower() or pause is None:
            break
        time.sleep(pause)  # a controller with rl_enable asks its callers to wait: ask again, later
    if done.returncode != 0:
        # Every line: a site's submit filter says why before sbatch's own last line.
        message = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = " / ".join(message) if message else f"exit status {done.returncode}"
        broken = "shared libraries" in reason or "munge" in reason.lower()
        raise SlurmError(f"{' '.join(cmd)} failed: {reason}{_hint() if broken else ''}")
    return done.stdout + (done.stderr if stderr_too else "")


def tres(text: str) -> dict[str, str]:
    """Trackable resources as Slurm writes them (cpu=2,mem=1G,node=1) by name."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


@functools.cache
def route_to_controller() -> str | None:
    """This machine's address on its route to the Slurm controller (None:
    unknown). On a login node with several networks it is the cluster's,
    which compute nodes reach too; the default route may be another one."""
    try:
        config = run("scontrol", "show", "config")
    except SlurmError:
        return None
    settings = dict(line.split("=", 1) for line in config.splitlines() if "=" in line)
    settings = {key.strip(): value.strip() for key, value in settings.items()}
    host = settings.get("SlurmctldHost[0]", "")
    host = host.split("(", 1)[1].rstrip(")") if "(" in host else host  # name(address)
    port = settings.get("SlurmctldPort", "6817").split("-")[0]
    if not host or not port.isdigit():
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, int(port)))  # UDP: picks the route, sends nothing
            return probe.getsockname()[0]
    except OSError:
        return None


def client_problem() -> str | None:
    """Why the Slurm client does not work here: None when it works, "" when
    there is none at all (no sbatch), else its error with what it lacks."""
    if shutil.which("sbatch") is None:
        return ""
    try:
        run("squeue", "-h", "-o", "%i", "-j", "0", timeout=10)
    except SlurmError as err:
        # squeue -j 0 answers "Invalid job id" from a live controller.
        if "Invalid job id" in str(err):
            return None
        return f"{err} ({client_error(str(err))})"
    return None


def available() -> bool:
    """True when sbatch exists and the controller answers squeue."""
    return client_problem() is None


def queue(job_ids: list[str]) -> list[dict]:
    """The jobs among job_ids still in squeue: id, state, reason, node."""
    if not job_ids:
        return []
    try:
        out = run("squeue", "-h", "-j", ",".join(job_ids), "-o", "%i|%T|%r|%N")
    except SlurmError as err:
        if "Invalid job id" in str(err):  # all of them have left the queue
            return []
        raise
    rows = []
    for line in out.splitlines():
        job, state, reason, node = line.split("|")
        rows.append({"job": job, "state": state, "reason": reason, "node": node})
    return rows


def accounting(job_ids: list[str], fields: list[str], *options: str) -> list[dict]:
    """sacct rows of job_ids, one dict per row keyed by the field names."""
    if not job_ids:
        return []
    out = run("sacct", "-n", "-P", *options, "-j", ",".join(job_ids), "-o", ",".join(fields))
    return [dict(zip(fields, line.split("|"), strict=False)) for line in out.splitlines() if line.strip()]


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        run("scancel", *job_ids)


def wait_gone(job_ids: list[str], timeout: float) -> list[str]:
    """Wait until none of job_ids is in squeue (cancelled jobs pass through
    COMPLETING); return those still there after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.25  # doubling to 2 s: a site's controller serves every learner of a class
    while True:
        left = [row["job"] for row in queue(job_ids)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(pause)
        pause = min(2 * pause, 2.0)
