"""`lab doctor`: is this site ready for the lesson? A checklist, each failure with its fix."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import time

from dask.utils import parse_bytes

from . import apptainer, slurm
from .diagnose import no_client
from .errors import LabError, SlurmError
from .spec import Plan, RunSpec


class Failed(Exception):
    """A check failed; the message says what is wrong, `fix` what to do."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


def check_client(spec: RunSpec) -> str:
    problem = slurm.client_problem()
    if problem is not None:
        raise Failed(f"sbatch/squeue do not answer{': ' + problem if problem else ''}", no_client())
    return "Slurm client answers (sbatch, squeue)"


def partition(spec: RunSpec) -> str:
    rows = slurm.run("sinfo", "-h", "-o", "%P").split()
    names = [row.rstrip("*") for row in rows]
    wanted = spec.slurm.get("queue")
    if wanted:
        if wanted not in names:
            raise Failed(f"partition {wanted!r} does not exist (there are: {', '.join(names)})",
                         "set jobqueue.slurm.queue (or --queue) to one of them")
        return wanted
    default = [row.rstrip("*") for row in rows if row.endswith("*")]
    if not default:
        raise Failed("no partition given and the cluster has no default",
                     f"set jobqueue.slurm.queue (or --queue) to one of: {', '.join(names)}")
    return default[0]


def check_partition(spec: RunSpec) -> str:
    name = partition(spec)
    return f"partition {name!r} exists" + ("" if spec.slurm.get("queue") else " (the default)")


def check_account(spec: RunSpec) -> str:
    """The account sbatch will really use: lab's --account (which lab's jobs
    carry in SBATCH_ACCOUNT too), else the learner's SBATCH_ACCOUNT (which
    beats a script's #SBATCH -A), else the user's default; and that it is theirs."""
    user = getpass.getuser()
    try:
        out = slurm.run("sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account")
    except SlurmError as err:
        raise Failed(f"cannot read accounts: {err}", "ask your site which account to use "
                     "and set jobqueue.slurm.account") from None
    accounts = sorted(set(out.split()))
    wanted = spec.slurm.get("account")
    own = os.environ.get("SBATCH_ACCOUNT")  # the learner's environment (an Alliance .bashrc)
    used = wanted or own
    # Sites name an account's associations by kind (the Alliance: def-prof1
    # is submitted as def-prof1_cpu or def-prof1_gpu by its submit filter).
    named = [a for a in accounts if a == used or a.startswith(f"{used}_")] if used else []
    source = "" if wanted else " (SBATCH_ACCOUNT in your environment, which sbatch takes over #SBATCH -A)"
    if used and not named:
        raise Failed(f"account {used!r}{source} is not one of {user}'s ({', '.join(accounts) or 'none'})",
                     "set jobqueue.slurm.account (or --account) to one of them"
                     + ("" if wanted else ", or unset SBATCH_ACCOUNT"))
    if not used and not accounts:
        raise Failed(f"{user} has no Slurm account", "ask your site for one (sacctmgr add user)")
    if not used:
        return f"{user} has a default account ({', '.join(accounts)})"
    said = f"account {used!r} is valid" + ("" if used in named else f" ({', '.join(named)})") + source
    if wanted and own and own != wanted:
        said += f"; lab's jobs carry it in SBATCH_ACCOUNT, over yours ({own})"
    return said


def check_submit(spec: RunSpec) -> str:
    """The worker job exactly as a run submits it (its TLS flags too), through
    sbatch --test-only: the site's own checks (its submit filter, accounts,
    reservations, limits)."""
    from dask_jobqueue import SLURMCluster

    from .workers.slurm import cluster_options, forget_credentials

    options = cluster_options(spec, [])
    options["scheduler_options"] = {**options.get("scheduler_options", {}), "dashboard_address": ":0"}
    with SLURMCluster(**options) as cluster:
        script = cluster.job_script()
    forget_credentials(cluster)
    try:
        said = slurm.run("sbatch", "--test-only", stdin=script, stderr_too=True,
                         env=slurm.environment(spec.placement)).strip()
    except SlurmError as err:
        raise Failed(f"Slurm refuses the worker job: {err}",
                     "give the placement the site asks for (--account, --queue, --reservation, --qos, "
                     "or jobqueue.slurm.* in a site profile)") from None
    answer = said.splitlines()[-1] if said else "no message"
    # Accepted, but to start a day or more ahead: its nodes are held, by a
    # reservation the job does not name, or a queue no lesson can wait out.
    start = re.search(r"to start at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", answer)
    if start and time.mktime(time.strptime(start.group(1), "%Y-%m-%dT%H:%M:%S")) > time.time() + 86400:
        raise Failed(f"Slurm accepts the worker job but would start it only at {start.group(1)} ({answer})",
                     "its nodes are held: give the workshop's reservation (--reservation; scontrol show "
                     "reservation lists them)")
    return f"sbatch --test-only accepts the worker job ({answer})"


def check_fits(spec: RunSpec) -> str:
    options = spec.slurm
    name = partition(spec)
    limit, memory, cpus = slurm.run("sinfo", "-h", "-p", name, "-o", "%l|%m|%c").splitlines()[0].split("|")
    node_memory = int(memory.rstrip("+")) * 1024**2
    wanted_memory = parse_bytes(options["memory"])
    if wanted_memory > node_memory:
        raise Failed(f"memory {options['memory']} is more than a node of {name!r} has ({memory} MB)",
                     "lower jobqueue.slurm.memory (or --memory)")
    if int(options.get("cores", 1)) > int(cpus.rstrip("+")):
        raise Failed(f"cores {options['cores']} is more than a node of {name!r} has ({cpus})",
                     "lower jobqueue.slurm.cores (or --cores)")
    if slurm.seconds(options["walltime"], empty=float("inf")) > slurm.seconds(limit, empty=float("inf")):
        raise Failed(f"walltime {options['walltime']} is over {name!r}'s limit ({limit})",
                     "lower jobqueue.slurm.walltime (or --walltime)")
    return (f"{options['cores']} core(s), {options['memory']}, {options['walltime']} fit "
            f"{name!r} (nodes: {cpus} CPUs, {memory} MB; limit {limit})")


def check_munge(spec: RunSpec) -> str:
    if shutil.which("munge") and shutil.which("unmunge"):
        encoded = subprocess.run(["munge", "-n"], capture_output=True, text=True, timeout=10)
        decoded = subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True,
                                 text=True, timeout=10)
        if encoded.returncode or decoded.returncode:
            raise Failed(f"munge: {(encoded.stderr or decoded.stderr).strip()}",
                         "is munged running, and is its socket (/run/munge) bound in?")
        return "munge encodes and decodes a credential"
    # No munge command (e.g. in a container): squeue worked, so munge did too.
    return "munge works (squeue authenticated; no munge command here to test directly)"


def check_tls(spec: RunSpec) -> str:
    from . import openssl_queue

    if not spec.tls:
        return "TLS is off (lab.tls: false): nothing to check"
    if not openssl_queue.installed():
        raise Failed(f"TLS: {openssl_queue.PROBLEM.split(', use ')[0]}",
                     "run lab from the lab image (lab.sif), or set lab.tls: false")
    return "TLS: OpenSSL's error queue is cleared before each read and write (CPython #148594)"


def check_worker(spec: RunSpec) -> str:
    """A worker job as a run starts it, which must connect back to this host:
    the one check of the network compute nodes share with it."""
    from .errors import NoWorkers
    from .run import run

    notes: list[str] = []
    try:
        result = run(spec, say=notes.append)
    except NoWorkers as err:  # sbatch's refusal is a SlurmError: it says why itself
        raise Failed(f"{err}{' (' + notes[-1] + ')' if notes else ''}",
                     "see squeue and the worker job's log (slurm-<job>.out)") from None
    if result.workers_connected < 1 or not result.correct:
        raise Failed(f"the worker computed a wrong sum ({result.total}, expected {result.expected})",
                     "see the worker job's log")
    worker = result.workers[0]
    return (f"a worker job ({worker.job} on {worker.node}) started and connected "
            f"in {result.startup_seconds:.1f}s")


def _pairs(line: str) -> dict[str, str]:
    """Key=value words of one line of scontrol's -o output."""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


def _limit(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def check_classroom(spec: RunSpec, learners: int, workers: int) -> str:
    """Whether `learners` runs of `workers` worker jobs each fit now where the
    jobs go (the reservation's nodes, else the partition's): free cores and
    memory, whole-node partitions, and the account's limits on each learner
    (MaxJobs, MaxSubmitJobs) and on all of them (GrpTRES cpu, GrpJobs)."""
    name = partition(spec)
    cores = int(spec.slurm.get("cores", 1))
    memory = -(-parse_bytes(spec.slurm["memory"]) // 1024**2)  # MiB, as dask-jobqueue writes --mem
    placement = dict(flag.lstrip("-").split("=", 1) for flag in spec.placement)
    reservation = placement.get("reservation")
    where = f"reservation {reservation!r}" if reservation else f"partition {name!r}"
    if reservation:
        said = _pairs(slurm.run("scontrol", "show", "reservation", reservation, "-o"))
        nodes = set(slurm.run("scontrol", "show", "hostnames", said.get("Nodes", "")).split())
    else:
        nodes = set(slurm.run("sinfo", "-h", "-N", "-p", name, "-o", "%N").split())
    whole_node = "EXCLUSIVE" in _pairs(slurm.run("scontrol", "show", "partition", name, "-o")).get(
        "OverSubscribe", "")
    total = free = 0
    for line in slurm.run("scontrol", "show", "node", "-o").splitlines():
        node = _pairs(line)
        if node.get("NodeName") not in nodes:
            continue
        cpus, memory_mb = int(node.get("CPUTot", 0)), int(node.get("RealMemory", 0))
        fits = 1 if whole_node else min(cpus // cores, memory_mb // memory)
        idle_cpus, idle_mb = cpus - int(node.get("CPUAlloc", 0)), memory_mb - int(node.get("AllocMem", 0))
        usable = not any(bad in node.get("State", "") for bad in ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING"))
        total += fits
        if usable:
            free += (1 if idle_cpus == cpus else 0) if whole_node else min(idle_cpus // cores, idle_mb // memory)
    limits = []
    account = placement.get("account")
    if account:
        rows = slurm.run("sacctmgr", "-n", "-P", "show", "assoc", f"account={account}",
                         "format=user,maxjobs,maxsubmit,grpjobs,grptres").splitlines()
        me = getpass.getuser()
        for row in rows:
            user, max_jobs, max_submit, grp_jobs, grp_tres = (row.split("|") + [""] * 5)[:5]
            if user == me:
                for label, value in (("MaxJobs", max_jobs), ("MaxSubmitJobs", max_submit)):
                    limit = _limit(value)
                    if limit is not None and limit < workers:
                        raise Failed(f"{account}'s {label}={value} per user is less than {workers} workers: "
                                     "the rest would never start (a Dask cluster's jobs do not end)",
                                     f"--workers {value} or fewer")
            elif not user:  # the account's own row: limits on all its users together
                cpu = slurm.tres(grp_tres).get("cpu", "")
                if _limit(cpu) is not None:
                    limits.append((f"GrpTRES cpu={cpu}", int(cpu) // (cores * workers)))
                if _limit(grp_jobs) is not None:
                    limits.append((f"GrpJobs={grp_jobs}", int(grp_jobs) // workers))
    at_once = min([free // workers, *(n for _, n in limits)])
    each = f"{workers} worker job(s) of {cores} core(s) and {memory}M" + (" (whole nodes)" if whole_node else "")
    if at_once >= learners:
        return (f"{learners} learners x {each} fit {where} now: {learners * workers} of {free} free job "
                f"slots ({len(nodes)} nodes, {total} slots in all); nobody waits")
    bound = min(limits, key=lambda item: item[1])[0] if limits and min(n for _, n in limits) == at_once \
        else f"{free} free job slots on {len(nodes)} nodes"
    rounds = -(-learners // at_once) if at_once else 0
    wait = (f"{at_once} run at once, the other {learners - at_once} wait for earlier learners' clusters to "
            f"close ({rounds} rounds; their worker jobs pend, Reason=Resources)") if at_once else \
        "none can start now"
    fewer = f"--workers {free // learners} each, " if free // learners else ""
    raise Failed(f"{learners} learners x {each} do not fit {where} now ({bound}): {wait}",
                 f"{fewer}more nodes, or the class in turns of {at_once}" if at_once else
                 f"{fewer}more nodes, or wait for the running jobs")


def run_checks(plan: Plan, site: str | None, say) -> bool:
    checks = [check_client, check_partition, check_account, check_fits, check_submit, check_munge, check_tls,
              check_worker]
    if plan.classroom:
        learners, workers = plan.classroom
        checks.append(lambda spec: check_classroom(spec, learners, workers))
    say(f"lab doctor: site {site or '(none: dask config only)'}"
        + (f", in Apptainer image {apptainer.image()}" if apptainer.image() else ""))
    failed = 0
    for number, check in enumerate(checks):
        start = time.monotonic()
        try:
            say(f"  [ok]   {check(plan.run)}")
        except Failed as err:
            failed += 1
            say(f"  [FAIL] {err}\n         fix: {err.fix}")
            if number == 0:  # nothing else can be checked without a Slurm client
                break
        except (LabError, RuntimeError, OSError) as err:  # a check that could not run
            failed += 1
            say(f"  [FAIL] {err} (after {time.monotonic() - start:.0f}s)")
    say("all checks passed" if not failed else f"{failed} check(s) failed")
    return failed == 0


def command(plan: Plan, args) -> int:
    """`lab doctor`: exit status 1 when a check fails."""
    return 0 if run_checks(plan, site=args.site, say=print) else 1
