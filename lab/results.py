"""What a run found and where it goes: where each worker ran (Placement),
one run's result (RunResult), a sweep's rows (Row) with their speedups and
the speedup limit, and results/<run-id>/ as CSV, JSON and Markdown, written
atomically, in a folder no earlier study used."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

JSON_ONLY = {"json_only": True}


@dataclass(frozen=True)
class Placement:
    """Where one worker runs, whose it is, and which machine's cores it may use
    (containers on one host share the kernel's boot id)."""

    node: str
    job: str
    user: str
    boot: str
    cpus: int
    cpu_ids: list[int] = field(default_factory=list)


def cores_available(placements: list[Placement], cores_per_worker: int = 1) -> int:
    """CPU cores the workers really have: per machine (boot id) the cores they
    may run on (compute nodes pinned to host cores of their own add up; nodes
    that share cores count them once), summed over machines, and no more than
    the workers asked for."""
    per_machine: dict[str, set[int]] = {}
    for worker in placements:
        per_machine.setdefault(worker.boot, set()).update(worker.cpu_ids or range(worker.cpus))
    return min(sum(map(len, per_machine.values())), len(placements) * cores_per_worker)


@dataclass
class RunResult:
    """What `lab run --json` writes. `workers` says where each connected
    worker ran; `compute_seconds` is the median of `compute_times`."""

    backend: str
    workers_requested: int
    workers_connected: int
    size: int
    parts: int
    total: int
    expected: int
    compute_seconds: float
    startup_seconds: float
    wall_seconds: float
    workers: list[Placement] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    leftover_jobs: list[str] = field(default_factory=list)
    kernel: str = "python"
    workers_lost: list[Placement] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds: submit, wait, compute, teardown...
    compute_times: list[float] = field(default_factory=list)
    cores_per_worker: int = field(default=1, repr=False)

    @property
    def correct(self) -> bool:
        return self.total == self.expected

    @property
    def cores_available(self) -> int:
        return cores_available(self.workers, self.cores_per_worker)

    def to_dict(self) -> dict:
        values = asdict(self)
        del values["cores_per_worker"]
        return {**values, "correct": self.correct, "cores_available": self.cores_available}


@dataclass(kw_only=True)
class Row:
    """One point of a sweep: a run's numbers, the sweep's speedups, and the
    versions it ran on. Metrics, notes, plot and the writers read it; the CSV
    columns are its fields but those marked json_only, the JSON has them all."""

    run_id: str = ""
    scheduler: str
    kernel: str
    workers_requested: int
    workers_connected: int = 0
    parts: int = 0
    size: int = 0
    compute_seconds: float
    compute_min: float | None = None  # fastest of the repeats (None: one sample)
    compute_max: float | None = None
    repeats: int = 1
    wall_seconds: float = 0.0
    speedup: float | None = None  # over the 1-worker run of the same scheduler and kernel
    efficiency: float | None = None  # speedup per worker
    ideal_speedup: int = 1  # limit(): min(workers, parts, cores)
    cores_available: int = 0
    correct: bool = True
    nodes: str = ""  # ";"-separated, as in the CSV
    job_ids: str = ""
    cpu_efficiency: float | None = None  # the worker jobs' CPU time over cores x elapsed (accounting)
    python: str = ""
    dask: str = ""
    distributed: str = ""
    dask_jobqueue: str = ""
    slurm: str = ""
    image: str = ""
    packages: str = ""
    host_cores: int = 0
    date: str = ""
    # In results.json only:
    total: int = field(default=0, metadata=JSON_ONLY)
    expected: int = field(default=0, metadata=JSON_ONLY)
    startup_seconds: float = field(default=0.0, metadata=JSON_ONLY)
    compute_times: list[float] = field(default_factory=list, metadata=JSON_ONLY)
    workers_lost: int = field(default=0, metadata=JSON_ONLY)
    phases: dict[str, float] = field(default_factory=dict, metadata=JSON_ONLY)

    @property
    def span(self) -> tuple[float, float]:
        """The fastest and slowest compute time (one sample: both the same)."""
        low = self.compute_seconds if self.compute_min is None else self.compute_min
        high = self.compute_seconds if self.compute_max is None else self.compute_max
        return low, high

    @classmethod
    def from_run(cls, result: RunResult, run_id: str, meta: dict) -> Row:
        """One point of a sweep: a run's numbers (the same for every
        scheduler), and the versions it ran on (`meta`)."""
        return cls(
            run_id=run_id, scheduler=result.backend, kernel=result.kernel,
            workers_requested=result.workers_requested, workers_connected=result.workers_connected,
            parts=result.parts, size=result.size, compute_seconds=result.compute_seconds,
            compute_min=min(result.compute_times), compute_max=max(result.compute_times),
            repeats=len(result.compute_times), wall_seconds=result.wall_seconds,
            cores_available=result.cores_available, correct=result.correct,
            nodes=";".join(sorted({w.node for w in result.workers})), job_ids=";".join(result.job_ids),
            total=result.total, expected=result.expected, startup_seconds=result.startup_seconds,
            compute_times=result.compute_times, workers_lost=len(result.workers_lost), phases=result.phases,
            **meta,
        )

    @classmethod
    def from_dict(cls, values: dict) -> Row:
        """A row from results.json (keys it no longer has are left out)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


COLUMNS = [f.name for f in fields(Row) if not f.metadata.get("json_only")]


def limit(workers: int, parts: int, cores: int) -> int:
    """The best speedup a run can have: no more parallel than its workers,
    its parts, or the CPU cores that really run them."""
    return max(1, min(workers, parts, cores))


def add_speedups(rows: list[Row]) -> list[Row]:
    """Fill speedup and efficiency against the 1-worker run of the same
    scheduler and kernel (None where the sweep has no such run)."""
    baseline = {(r.scheduler, r.kernel): r.compute_seconds for r in rows if r.workers_requested == 1 and r.correct}
    for row in rows:
        one = baseline.get((row.scheduler, row.kernel))
        if one and row.compute_seconds > 0:
            row.speedup = one / row.compute_seconds
            row.efficiency = row.speedup / row.workers_requested
        else:
            row.speedup = row.efficiency = None
        row.ideal_speedup = limit(row.workers_requested, row.parts, row.cores_available)
    return rows


def write_atomic(path: Path, text: str) -> None:
    """A reader sees the old file or the whole new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # a result, not a secret (mkstemp makes 0600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_dir(base: Path, prefix: str = "") -> Path:
    """A new results/<run-id>/; never one that exists (mkdir is the lock)."""
    base.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        try:
            (base / run_id).mkdir()
        except FileExistsError:
            continue
        return base / run_id


@contextlib.contextmanager
def new_results(base: Path, prefix: str = ""):
    """new_run_dir, removed again when the command fails before it wrote
    anything there (a refused first job); what was measured stays."""
    folder = new_run_dir(base, prefix)
    try:
        yield folder
    except BaseException:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only an empty folder
        raise


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in asdict(row).items()})
    return out.getvalue()


def save(run_dir: Path, rows: list[Row], markdown: str) -> None:
    write_atomic(run_dir / "results.json", json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    write_atomic(run_dir / "results.csv", to_csv(rows))
    write_atomic(run_dir / "results.md", markdown)


def load(run_dir: Path) -> list[Row]:
    return [Row.from_dict(values) for values in json.loads((run_dir / "results.json").read_text())]


def load_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))
