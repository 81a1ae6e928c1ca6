"""What a run is: a frozen RunSpec, resolved once from flags over dask config
and checked before anything starts. It is the only thing a command hands down
(to lab.run, lab.sweep, lab.prep, lab.doctor)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from . import apptainer, checks, config
from .errors import BadInput
from .graph import KERNELS, SCHEDULERS, SIZE_FACTOR

# What `lab run --backend` and lab.backend take: auto is slurm when sbatch answers.
BACKENDS = ("auto", "slurm", "local")
# The worker job settings a command's flags may give (jobqueue.slurm.* otherwise).
SLURM_FLAGS = ("cores", "memory", "walltime", "queue", "account", "interface", "python")
MAX_WORKERS = 512


@dataclass(frozen=True)
class RunSpec:
    """One run: who computes (a scheduler of graph.SCHEDULERS), how many
    workers, the graph (kernel, size, parts), how long to wait for the
    workers, how often to time the compute, and the Slurm worker jobs'
    SLURMCluster arguments (empty unless the scheduler is slurm)."""

    scheduler: str
    workers: int
    size: int
    parts: int
    kernel: str = "python"
    timeout: float = 120.0
    repeats: int = 1
    slurm: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.scheduler not in SCHEDULERS:
            raise BadInput(f"unknown scheduler {self.scheduler!r}; choose from {', '.join(SCHEDULERS)}")
        if self.kernel not in KERNELS:
            raise BadInput(f"unknown kernel {self.kernel!r}; choose from {', '.join(KERNELS)}")
        object.__setattr__(self, "slurm", MappingProxyType(dict(self.slurm)))  # frozen all the way


def _pick(flag, key: str):
    return config.lab(key) if flag is None else flag


def workers(flag, key: str = "workers") -> int:
    return checks.whole_number("--workers", _pick(flag, key), 1, MAX_WORKERS)


def worker_counts(flags: Iterable | None, key: str, name: str = "--workers", high: int = MAX_WORKERS) -> list[int]:
    """A list of counts (a sweep's workers, the GIL episode's CPUs), flags over config."""
    values = config.lab(key) if flags is None else flags
    if isinstance(values, (str, int)):
        values = str(values).split()
    return [checks.whole_number(name, value, 1, high) for value in values]


def backend(flag) -> str:
    value = _pick(flag, "backend")
    if value not in BACKENDS:
        raise BadInput(f"lab.backend must be one of {', '.join(BACKENDS)} (got {value!r})")
    return str(value)


def slurm_options(flags: Mapping[str, Any]) -> dict:
    """SLURMCluster's arguments: each of SLURM_FLAGS from `flags` (None: not
    given) over jobqueue.slurm.*, checked; inside Apptainer the workers run in
    the same image unless a python is given."""
    options = {name: config.slurm(name) if flags.get(name) is None else flags[name] for name in SLURM_FLAGS}
    options["cores"] = checks.whole_number("--cores", options["cores"], 1, 1024)
    options["memory"] = checks.memory("--memory", options["memory"])
    options["walltime"] = checks.walltime("--walltime", options["walltime"])
    sif = apptainer.image()
    if sif and not options.get("python"):
        options["python"] = apptainer.worker_python(sif)
    return {key: value for key, value in options.items() if value not in (None, "")}


def resolve(scheduler: str, *, workers_flag=None, size=None, parts=None, timeout=None, kernel: str = "python",
            repeats: int = 1, slurm: Mapping[str, Any] | None = None) -> RunSpec:
    """A RunSpec from flags (None: not given) over lab.* config, checked."""
    return RunSpec(
        scheduler=scheduler,
        workers=1 if scheduler == "synchronous" else workers(workers_flag),
        size=checks.whole_number("--size", _pick(size, "size"), 1, 10**10),
        parts=checks.whole_number("--parts", _pick(parts, "parts"), 1, 10_000),
        timeout=checks.seconds("--worker-timeout", _pick(timeout, "worker-timeout")),
        kernel=kernel, repeats=repeats, slurm=slurm or {},
    )


def sweep(base: RunSpec, schedulers: Iterable[str], kernels: Iterable[str], counts: Iterable[int]) -> list[RunSpec]:
    """`lab study`'s runs: every scheduler x kernel x worker count (synchronous
    once: it has one worker), each kernel sized so that 1 worker takes about as
    long as the pure-Python one; Slurm job settings only for slurm."""
    plan = []
    for scheduler in schedulers:
        for kernel in kernels:
            for count in [1] if scheduler == "synchronous" else counts:
                plan.append(replace(base, scheduler=scheduler, kernel=kernel, workers=count,
                                    size=base.size * SIZE_FACTOR[kernel],
                                    slurm=base.slurm if scheduler == "slurm" else {}))
    return plan
