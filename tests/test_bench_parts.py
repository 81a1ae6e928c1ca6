"""The bench's own arithmetic, without a cluster: a worker job's moments read
from its log in any time zone, scale(n) split part by part from known
moments, the host's two-process share, and each target's verdict."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

import pytest

from bench import bench


def log_line(epoch: float, zone: datetime.timezone, text: str) -> str:
    """A dask log line as a worker job writes it: local time, milliseconds."""
    stamp = datetime.datetime.fromtimestamp(epoch, zone)
    return f"{stamp:%Y-%m-%d %H:%M:%S},{stamp.microsecond // 1000:03d} - distributed - INFO - {text}"


def job_log(start: float, nanny: float, worker: float, connected: float, zone: datetime.timezone) -> str:
    offset = zone.utcoffset(None)
    sign = "-" if offset < datetime.timedelta(0) else "+"
    hours, rest = divmod(abs(int(offset.total_seconds())), 3600)
    return "\n".join([f"lab-bench-job-start {start:.3f} {sign}{hours:02d}{rest // 60:02d}",
                      log_line(nanny, zone, "Start Nanny at: 'tls://10.0.0.2:1234'"),
                      log_line(worker, zone, "Start worker at: tls://10.0.0.2:2345"),
                      log_line(connected, zone, "Registered to: tls://10.0.0.1:8786")])


@pytest.mark.parametrize("hours", [0, 5.5, -3, -9.5])
def test_job_moments_are_epoch_seconds_in_any_time_zone(hours):
    zone = datetime.timezone(datetime.timedelta(hours=hours))
    moments = bench.job_moments(job_log(1_700_000_000.0, 1_700_000_001.25, 1_700_000_002.5, 1_700_000_002.75, zone))
    assert moments == pytest.approx({"job": 1_700_000_000.0, "nanny": 1_700_000_001.25,
                                     "worker": 1_700_000_002.5, "connected": 1_700_000_002.75}, abs=0.002)


def test_slurm_launch_splits_the_last_jobs_start_at_its_own_moments(monkeypatch):
    """scale() at t=100; the run reports 3.0 s to the last connection (t=103).
    The last job to connect started its script at 100.5, its nanny at 101.5,
    its worker at 102.25, connected at 103; another job connected earlier."""
    zone = datetime.timezone(datetime.timedelta(hours=-4))
    logs = [job_log(100.2, 100.9, 101.6, 101.7, zone), job_log(100.5, 101.5, 102.25, 103.0, zone)]

    class Cluster:
        def out(self, command: str, **kwargs) -> str:
            return "".join(f"{log}\nlab-bench-end\n" for log in logs)

    monkeypatch.setattr(bench, "CLUSTER", Cluster())
    monkeypatch.setattr(bench, "lab_run", lambda flags, env="": {"startup_seconds": 3.0})
    parts = {name.removesuffix("_seconds"): figure["median"] for name, figure in bench.slurm_launch(1, n=2).items()}
    assert parts == pytest.approx({"slurm": 0.5, "nanny": 1.0, "worker": 0.75, "connect": 0.75, "total": 3.0},
                                  abs=0.002)


def test_the_ceiling_times_one_process_then_two_and_takes_their_share_of_two():
    """The script times one process doing every part, then two doing half each
    at once; held to one core, the two cannot be much faster than the one. The
    share: half of their ratio (1.0 is two cores' worth, 0.5 one core's)."""
    one_core = min(os.sched_getaffinity(0))
    done = subprocess.run([sys.executable, "-c", bench.CEILING, "1000000", "4", "1"], capture_output=True,
                          text=True, timeout=300, check=True, preexec_fn=lambda: os.sched_setaffinity(0, {one_core}))
    ((one, two),) = json.loads(done.stdout)
    assert one > 0 and two > 0.5 * one, (one, two)
    assert bench.share_of_two(4.0, 2.0) == 1.0 and bench.share_of_two(4.0, 4.0) == 0.5
    assert bench.share_of_two(3.0, 2.0) == 0.75


def test_each_target_is_met_by_its_median_in_its_direction():
    figure = {"min": 1.0, "median": 2.0, "max": 9.0}
    results = {"ready": {"warm_seconds": figure}, "startup": {"slurm_4_seconds": {**figure, "median": 3.0}},
               "study": {"2_workers": {"limit": 2}},
               "schedulers": {"slurm": {"min": 1.0, "median": 1.8, "max": 2.2},
                              "local": {"min": 1.0, "median": 1.9, "max": 1.95}},
               "sizes": {bench.IMAGES[0]: 310.0}}
    rows = {row["figure"]: row for row in bench.targets(results)}
    assert rows["warm `make up` to ready (s)"]["met"] is True  # 2 <= 8, though its max is 9
    assert rows["scale(4) to 4 connected, SLURM (s)"]["met"] is False  # 3 > 2.5
    assert rows["speedup at 2 workers, share of the limit, slurm (lab study)"]["met"] is False  # 0.9 < 0.95
    assert rows["speedup at 2 workers, share of the limit, local (lab study)"]["met"] is True  # 0.95
    assert rows["lab image (MB)"]["met"] is False and rows["lab image (MB)"]["target"] == "<= 300 MB"
    assert "cold `make up` to ready, no images, base image present (s)" not in rows  # not measured: no row
