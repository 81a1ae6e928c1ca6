"""Where a study's rows go: results/<run-id>/ as CSV, JSON and Markdown,
written atomically, in a folder no earlier study used."""

from __future__ import annotations

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
    ideal_speedup: int = 1  # metrics.limit: min(workers, parts, cores)
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
    def from_dict(cls, values: dict) -> Row:
        """A row from results.json (keys it no longer has are left out)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


COLUMNS = [f.name for f in fields(Row) if not f.metadata.get("json_only")]


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
