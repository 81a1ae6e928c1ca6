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
from pathlib import Path

COLUMNS = [
    "run_id", "scheduler", "kernel", "workers_requested", "workers_connected", "parts", "size",
    "compute_seconds", "compute_min", "compute_max", "repeats", "wall_seconds", "speedup", "efficiency",
    "ideal_speedup", "cores_available",
    "correct", "nodes", "job_ids", "cpu_efficiency", "python", "dask", "distributed",
    "dask_jobqueue", "slurm", "image", "packages", "host_cores", "date",
]


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


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    return out.getvalue()


def save(run_dir: Path, rows: list[dict], markdown: str) -> None:
    write_atomic(run_dir / "results.json", json.dumps(rows, indent=2) + "\n")
    write_atomic(run_dir / "results.csv", to_csv(rows))
    write_atomic(run_dir / "results.md", markdown)


def load(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())


def load_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))
