"""The classroom on the strict site (make up SITE=strict, a cluster of its
own): the lesson's SLURMCluster script (tests/lesson/code) run by one
directory learner alone, then by LEARNERS at once, each with the account and
reservation exported as the site tells them. Records the time to every
learner's result beside one learner's, the controller's requests a second
meanwhile (sdiag's count by user; the site rate-limits each user), and each
worker job's wait in the queue (sacct). Writes bench/classroom.json and
bench/classroom.md, which `make figures` puts in the README.

    python -m bench.classroom [--learners 8] [--nodes 4] [--out bench]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lab.results import write_atomic
from tools.cluster import FOLDER_OWNER, ROOT, Cluster

PROJECT = "dask-slurm-lab-bench"
EXPORTS = "export SBATCH_ACCOUNT=def-prof1_cpu SBATCH_RESERVATION=workshop;"


def measure(cluster: Cluster, learners: int) -> dict:
    alone = cluster.classroom(1, EXPORTS)
    crowd = cluster.classroom(learners, EXPORTS)
    for run in alone + crowd:
        if run["status"] != 0 or "sum: " not in run["output"]:
            raise SystemExit(f"bench: {run['learner']}'s script failed:\n{run['output'][-2000:]}")
    waits = [wait for run in crowd for wait in run["queue_waits"]]
    elapsed = crowd[0]["elapsed"]
    return {
        "learners": learners,
        "alone_seconds": round(alone[0]["seconds"], 2),
        "all_results_seconds": round(elapsed, 2),
        "learner_seconds": {"min": round(min(r["seconds"] for r in crowd), 2),
                            "median": round(statistics.median(r["seconds"] for r in crowd), 2),
                            "max": round(max(r["seconds"] for r in crowd), 2)},
        "controller_requests": crowd[0]["requests"],
        "requests_per_second": round(crowd[0]["requests"] / elapsed, 1),
        "largest_queue_wait_seconds": max(waits),
        "queue_waits_seconds": sorted(waits),
    }


def markdown(results: dict) -> str:
    n, times = results["learners"], results["learner_seconds"]
    return "\n".join([
        f"Measured by `python -m bench.classroom` ({results['when']}, {results['cores']} cores, "
        f"{results['nodes']} nodes of 2 CPUs, the strict site): the lesson's SLURMCluster script (one worker "
        f"of 1 core) by one learner alone, then by {n} directory learners at once.", "",
        f"| one learner alone | {n} at once: every result | each of the {n}: min, median, max | largest queue "
        "wait (sacct) | controller requests a second (all learners; each may make 2 after a burst of 30) |",
        "|---|---|---|---|---|",
        f"| {results['alone_seconds']} s | {results['all_results_seconds']} s | {times['min']}, {times['median']}, "
        f"{times['max']} s | {results['largest_queue_wait_seconds']:g} s | {results['requests_per_second']} "
        f"({results['controller_requests']} in all) |", ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    if not 1 <= args.learners <= 8:
        parser.error("--learners must be from 1 to 8 (the strict site's directory has learner01..08)")
    with tempfile.TemporaryDirectory(prefix="lab-bench-class-") as scratch:
        for folder in ("work", "results"):
            os.makedirs(f"{scratch}/{folder}")
            os.chown(f"{scratch}/{folder}", FOLDER_OWNER, FOLDER_OWNER)
        cluster = Cluster(Path(scratch, "work"), Path(scratch, "results"), project=PROJECT, dashboard_port=18790)
        up = cluster.make("up", "SITE=strict", f"NODES={args.nodes}", timeout=1800)
        if up.returncode != 0:
            raise SystemExit(f"bench: make up SITE=strict failed:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}")
        try:
            results = measure(cluster, args.learners)
        finally:  # its jobs cancelled, then down as the site it runs, its volumes deleted
            cluster.make("clean", "FORCE=1", timeout=300)
    results.update(when=time.strftime("%Y-%m-%dT%H:%M:%S%z"), cores=os.cpu_count(), nodes=args.nodes)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "classroom.json", json.dumps(results, indent=2) + "\n")
    write_atomic(args.out / "classroom.md", markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
