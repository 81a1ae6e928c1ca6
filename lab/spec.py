"""What a command will do, decided once, before anything starts.

OPTIONS is the one table of the lab's options: the CLI builds every flag
from it, and `resolve` reads each flag over its dask config key, checks it,
and returns the command's frozen Plan (its RunSpecs: one for a run, many
for a sweep). Backend choice, results folders and every SLURMCluster and
sbatch argument are decided here; nothing changes a plan afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dask.config

from . import apptainer, config, inputs, slurm, validate
from .diagnose import no_client
from .errors import BadInput
from .graph import KERNELS, SCHEDULERS, SIZE_FACTOR

# What `lab run --backend` and lab.backend take: auto is slurm when sbatch answers.
BACKENDS = inputs.words("BACKEND")

RUNS = ("run", "study", "prep", "job")
WORKER_JOBS = ("run", "study", "prep", "doctor")  # commands that start SLURMCluster worker jobs
PLACED = (*WORKER_JOBS, "job")  # commands whose jobs a site places (partition, account, ...)


@dataclass(frozen=True)
class Option:
    """One option: its flag (--name), the dask config key of its default, its
    check (validate.*: the clean value or BadInput), the commands that take
    it, its help. A worker-job option also names SLURMCluster's keyword
    (`cluster`) or the sbatch flag every job of the run carries (`sbatch`)."""

    name: str
    key: str | None
    check: Callable[[str, Any], Any]
    commands: tuple[str, ...]
    help: str
    many: bool = False
    cluster: str = ""
    sbatch: str = ""


WORKERS = validate.whole(*inputs.bounds("WORKERS"))

OPTIONS = (
    # What a run computes, and how long it waits for its workers.
    Option("workers", "lab.workers", WORKERS, ("run", "job"), "Dask workers to start"),
    Option("workers", "lab.study.workers", WORKERS, ("study",), "worker counts", many=True),
    Option("workers", "lab.prep.workers", WORKERS, ("prep",), "worker counts of the compute-time table",
           many=True),
    Option("size", "lab.size", validate.whole(*inputs.bounds("SIZE")), RUNS, "numbers each part sums"),
    Option("parts", "lab.parts", validate.whole(*inputs.bounds("PARTS")), RUNS, "independent parts"),
    Option("backend", "lab.backend", validate.one_of(BACKENDS), ("run",),
           "slurm: worker jobs; local: a LocalCluster; auto: slurm when sbatch answers"),
    Option("worker-timeout", "lab.worker-timeout", validate.seconds, WORKER_JOBS, "seconds to wait for workers"),
    # The classroom (lab doctor): N learners at once, each with W workers.
    Option("learners", None, validate.whole(1, 1000), ("doctor",),
           "learners running at once: check that they fit the partition or reservation now"),
    Option("workers", None, WORKERS, ("doctor",), "workers each learner starts (with --learners; default 1)"),
    # A sweep (lab study), the lesson's blocks (lab prep), and where they go.
    Option("schedulers", None, validate.one_of(SCHEDULERS), ("study",),
           f"of {', '.join(SCHEDULERS)} (default: all; slurm when it answers)", many=True),
    Option("kernels", "lab.study.kernels", validate.one_of(tuple(KERNELS)), ("study",),
           f"of {', '.join(KERNELS)}", many=True),
    Option("repeat", "lab.study.repeat", validate.whole(*inputs.bounds("REPEAT")), ("study",),
           "time each point N times on the same workers; the table shows the median and its range"),
    Option("gil-cpus", "lab.prep.gil-cpus", validate.whole(1, 64), ("prep",), "CPUs of the GIL episode's jobs",
           many=True),
    Option("results", "lab.results", validate.writable_folder, ("study", "prep", "job", "lesson"),
           "folder for results/<run-id>/"),
    Option("json", None, validate.writable_file, ("run",), "also write the result as JSON to this file"),
    # The worker jobs (jobqueue.slurm.*): SLURMCluster's keyword, and the
    # sbatch flag of those that place every job of a run (prep's and job
    # mode's too). A Slurm option is one line here.
    Option("cores", "jobqueue.slurm.cores", validate.whole(1, 1024), WORKER_JOBS, "cores per worker job",
           cluster="cores"),
    Option("memory", "jobqueue.slurm.memory", validate.memory, WORKER_JOBS, "memory per worker job, e.g. 256M",
           cluster="memory"),
    Option("walltime", "jobqueue.slurm.walltime", validate.walltime, WORKER_JOBS,
           "time limit per worker job, e.g. 00:05:00", cluster="walltime"),
    Option("queue", "jobqueue.slurm.queue", validate.slurm_name, PLACED, "partition", cluster="queue",
           sbatch="--partition"),
    Option("account", "jobqueue.slurm.account", validate.slurm_name, PLACED, "Slurm account", cluster="account",
           sbatch="--account"),
    Option("reservation", "jobqueue.slurm.reservation", validate.slurm_name, PLACED, "Slurm reservation",
           sbatch="--reservation"),
    Option("qos", "jobqueue.slurm.qos", validate.slurm_name, PLACED, "quality of service", sbatch="--qos"),
    Option("interface", "jobqueue.slurm.interface", validate.interface, WORKER_JOBS,
           "network interface for scheduler and workers, e.g. eth0", cluster="interface"),
    Option("python", "jobqueue.slurm.python", validate.text, WORKER_JOBS, "worker python command",
           cluster="python"),
    # Job mode: the whole study as one job (lab job).
    Option("memory", "lab.job.memory", validate.slurm_memory, ("job",), "memory per rank (Slurm's units)"),
    Option("walltime", "lab.job.walltime", validate.walltime, ("job",), "time limit of the job"),
)


def options(command: str) -> list[Option]:
    return [option for option in OPTIONS if command in option.commands]


def default(option: Option):
    return None if option.key is None else dask.config.get(option.key, None)


def _value(option: Option, flags: Mapping[str, Any]):
    """The option's value: its flag, else its config default, checked (None: neither)."""
    value = flags.get(option.name.replace("-", "_"))
    if value is None:  # not given: the config's, where it has one
        value = default(option)
        if value is None or value == "":
            return None
    name = f"--{option.name}"
    if option.many:
        values = str(value).split() if isinstance(value, (str, int)) else list(value)
        return tuple(option.check(name, item) for item in values)
    return option.check(name, value)


@dataclass(frozen=True)
class RunSpec:
    """One run: who computes (a scheduler of graph.SCHEDULERS), how many
    workers, the graph (kernel, size, parts), how long to wait for the
    workers, how often to time the compute; for slurm, SLURMCluster's
    keyword arguments (`slurm`, complete) and the sbatch flags that place
    every job of the run (`placement`: partition, account, ...)."""

    scheduler: str
    workers: int
    size: int
    parts: int
    kernel: str = "python"
    timeout: float = 120.0
    repeats: int = 1
    slurm: Mapping[str, Any] = field(default_factory=dict)
    placement: tuple[str, ...] = ()
    dashboard: str = "127.0.0.1:8787"
    tls: bool = True

    def __post_init__(self):
        if self.scheduler not in SCHEDULERS:
            raise BadInput(f"unknown scheduler {self.scheduler!r}; choose from {', '.join(SCHEDULERS)}")
        if self.kernel not in KERNELS:
            raise BadInput(f"unknown kernel {self.kernel!r}; choose from {', '.join(KERNELS)}")
        object.__setattr__(self, "slurm", MappingProxyType(dict(self.slurm)))  # frozen all the way


@dataclass(frozen=True)
class Plan:
    """A command's runs and what else it was given: `runs` (one for run and
    doctor; a sweep's; prep's compute-time table), `probe` (the one worker
    job prep watches in squeue), the results folder, the GIL episode's CPUs
    (prep), the job's memory and time (job), the file for `lab run --json`."""

    runs: tuple[RunSpec, ...]
    probe: RunSpec | None = None
    results: Path = Path("results")
    json: Path | None = None
    gil_cpus: tuple[int, ...] = ()
    job_memory: str = ""
    job_walltime: str = ""
    classroom: tuple[int, int] | None = None  # lab doctor --learners N --workers W

    @property
    def run(self) -> RunSpec:
        return self.runs[0]


def _placement(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The sbatch flags that place every job of a run: partition, account, ..."""
    return tuple(f"{o.sbatch}={values[o.name]}" for o in OPTIONS if o.sbatch and values.get(o.name) is not None)


def _slurm(values: Mapping[str, Any], dashboard: str, tls: bool) -> tuple[dict, tuple[str, ...]]:
    """SLURMCluster's keyword arguments and the placement's sbatch flags."""
    given = [o for o in OPTIONS if (o.cluster or o.sbatch) and values.get(o.name) is not None]
    cluster = {o.cluster: values[o.name] for o in given if o.cluster}
    # What SLURMCluster has no keyword for goes into its job script as directives.
    extra = [f"{o.sbatch}={values[o.name]}" for o in given if o.sbatch and not o.cluster]
    if extra:
        cluster["job_extra_directives"] = [*(config.slurm("job-extra-directives") or []), *extra]
    sif = apptainer.image()
    command = str(config.lab("apptainer.command"))
    # Inside Apptainer the workers run in the same image, with the site's binds.
    # The python the image's lab-image.pth named at start (no binds: no site
    # read yet) is nobody's choice; a python the user gave stays.
    if sif and cluster.get("python") in (None, apptainer.worker_python(sif, command, [])):
        cluster["python"] = apptainer.worker_python(sif, command, list(config.lab("apptainer.binds") or []))
    scheduler = dict(config.slurm("scheduler-options") or {})
    scheduler.setdefault("dashboard_address", dashboard)
    if "interface" not in cluster and not {"host", "interface"} & set(scheduler):
        # No network named: the scheduler listens where this host reaches the
        # controller, not on the default route's address (dask's own choice),
        # which on a login node with several networks compute nodes may not reach.
        address = slurm.route_to_controller()
        if address:
            scheduler["host"] = address
    cluster["scheduler_options"] = scheduler
    if tls:  # the worker jobs' copies of the run's credentials
        cluster["shared_temp_directory"] = str(Path(str(config.lab("tls-directory"))).expanduser())
    return cluster, _placement(values)


def _values(command: str, flags: Mapping[str, Any], slurm_too: bool) -> dict[str, Any]:
    """Every option of the command, resolved and checked; the worker-job
    options only when its runs will start worker jobs."""
    return {o.name: _value(o, flags) for o in options(command)
            if slurm_too or not (o.cluster or o.sbatch)}


def _backend(value: str) -> str:
    """`lab run`'s scheduler: local or slurm (auto: slurm when sbatch answers).
    Only where there is no Slurm client at all, and not inside Apptainer
    (where one is meant to be bound in), may auto run on this machine."""
    if value == "local":
        return "local"
    problem = slurm.client_problem()
    if problem:
        raise BadInput(f"the Slurm client does not work here: {problem}")
    if problem == "" and (value == "slurm" or apptainer.image()):
        raise BadInput(f"no Slurm client here (sbatch); {no_client()}; or use --backend local to run on this machine")
    return "slurm" if problem is None else "local"


def _needs_slurm(command: str, problem: str | None) -> None:
    """BadInput unless the Slurm client works (`problem`: slurm.client_problem()'s answer)."""
    if problem is not None:
        raise BadInput(f"lab {command} needs SLURM: "
                       + (f"the Slurm client does not work here: {problem}" if problem else
                          f"no Slurm client here (sbatch); {no_client()}"))


def _spec(scheduler: str, values: dict, workers: int, kernel: str = "python", **more) -> RunSpec:
    dashboard, tls = str(config.lab("dashboard-address")), bool(config.lab("tls"))
    cluster, placement = _slurm(values, dashboard, tls) if scheduler == "slurm" else ({}, ())
    return RunSpec(scheduler=scheduler, workers=1 if scheduler == "synchronous" else workers, kernel=kernel,
                   size=values["size"] * SIZE_FACTOR[kernel], parts=values["parts"],
                   timeout=values.get("worker-timeout") or float(config.lab("worker-timeout")),
                   slurm=cluster, placement=placement, dashboard=dashboard, tls=tls, **more)


def _option(command: str, name: str) -> Option:
    return next(o for o in options(command) if o.name == name)


def resolve(command: str, flags: Mapping[str, Any]) -> Plan:
    """The command's plan from its flags (argparse's names; None: not given)
    over dask config, every value checked: BadInput before anything starts."""
    if command == "run":
        values = _values("run", flags, slurm_too=False)
        if flags.get("runner"):  # one rank of a job mode run: its allocation is made
            return Plan((RunSpec("slurm", workers=values["workers"], size=values["size"], parts=values["parts"],
                                 timeout=values["worker-timeout"]),), json=values["json"])
        scheduler = _backend(values["backend"])
        if scheduler == "slurm":
            values = _values("run", flags, slurm_too=True)
        return Plan((_spec(scheduler, values, values["workers"]),), json=values["json"])
    if command == "study":
        given = _value(_option("study", "schedulers"), flags)
        problem = slurm.client_problem() if not given or "slurm" in given else None  # one probe
        schedulers = given or tuple(s for s in SCHEDULERS if s != "slurm" or problem is None)
        if "slurm" in schedulers:
            _needs_slurm("study --schedulers slurm", problem)
        values = _values("study", flags, slurm_too="slurm" in schedulers)
        runs = tuple(_spec(scheduler, values, count, kernel=kernel, repeats=values["repeat"])
                     for scheduler in schedulers for kernel in values["kernels"]
                     for count in ((1,) if scheduler == "synchronous" else values["workers"]))
        return Plan(runs, results=values["results"])
    if command == "prep":
        values = _values("prep", flags, slurm_too=True)
        _needs_slurm("prep", slurm.client_problem())
        return Plan(tuple(_spec("slurm", values, count) for count in values["workers"]),
                    probe=_spec("slurm", values, 1), results=values["results"], gil_cpus=values["gil-cpus"])
    if command == "doctor":
        # The check's own small run: one worker job, the lesson's settings.
        values = _values("doctor", flags, slurm_too=True)
        if values["workers"] and not values["learners"]:
            raise BadInput("--workers goes with --learners: lab doctor --learners 30 --workers 2")
        classroom = (values["learners"], values["workers"] or 1) if values["learners"] else None
        return Plan((_spec("slurm", {**values, "size": 1000, "parts": 1}, 1),), classroom=classroom)
    if command == "job":
        values = _values("job", flags, slurm_too=True)
        run = RunSpec("slurm", workers=values["workers"], size=values["size"], parts=values["parts"],
                      placement=_placement(values))
        return Plan((run,), results=values["results"], job_memory=values["memory"],
                    job_walltime=values["walltime"])
    if command == "lesson":  # its steps are the lesson's own commands: only where its reports go
        return Plan((), results=_values("lesson", flags, slurm_too=False)["results"])
    raise ValueError(f"no plan for {command}")
