"""`make bench`: the lab's own speed and cost on this machine, next to a bare
LocalCluster. Writes bench/results.json and bench/results.md; every figure is
min / median / max over --repeat runs. Runs a real cluster of its own (compose
project dask-slurm-lab-bench, its own folders and dashboard port), so a user's
cluster, volumes and folders are never touched, and removes it at the end.
--cold rebuilds the images without Docker's build cache (--no-cache): it
deletes no image and no cache.

    python bench/bench.py [--repeat 3] [--quick] [--cold] [--out bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tests' cluster driver, shared: the images' tag, the default node count, `lab run --json`.
sys.path.insert(0, str(ROOT / "tests"))
from helpers import NODES, Cluster, image  # noqa: E402

IMAGES = tuple(image(name) for name in ("lab", "slurm", "db"))
PROJECT = "dask-slurm-lab-bench"
# The bench's own cluster: its own compose project, folders and dashboard port.
# The folders are made by `make up` (bin/preflight), inside a fresh temporary one.
SCRATCH = Path(tempfile.mkdtemp(prefix="lab-bench-"))
CLUSTER = Cluster(SCRATCH / "work", SCRATCH / "results", project=PROJECT, dashboard_port=18789)
ENV = CLUSTER.env


def sh(*cmd: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=ENV)
    if check and done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def stats(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "n": len(values), "values": [round(v, 3) for v in values]}


def timed(*cmd: str) -> float:
    start = time.monotonic()
    sh(*cmd)
    return time.monotonic() - start


def remove_own_cluster() -> None:
    """Down, volumes included: the bench's own project only."""
    assert ENV["COMPOSE_PROJECT_NAME"] == PROJECT
    sh("docker", "compose", "down", "--volumes", "--remove-orphans")


def ready_cluster(repeat: int, cold: bool) -> dict:
    """Seconds of `make up` to a ready cluster (a test job has run)."""
    out = {}
    warm = []
    for _ in range(repeat):  # images built, no volumes
        remove_own_cluster()
        warm.append(timed("make", "--no-print-directory", "up", f"NODES={NODES}"))
    out["warm_seconds"] = stats(warm)
    if cold:
        cold_times = []
        for _ in range(repeat):  # every image layer built again, no volumes; the base image stays
            remove_own_cluster()
            start = time.monotonic()
            sh("docker", "compose", "build", "--no-cache", "-q", "lab")
            sh("docker", "compose", "build", "--no-cache", "-q")
            sh("make", "--no-print-directory", "up", f"NODES={NODES}")
            cold_times.append(time.monotonic() - start)
        out["cold_seconds"] = stats(cold_times)
    return out


def lab_run(flags: str) -> dict:
    """`lab run` on the login node as the learner; its JSON result."""
    result, done = CLUSTER.lab_run(flags, timeout=900)
    if result is None:
        raise SystemExit(f"bench: lab run {flags} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return result


def worker_startup(repeat: int, counts: list[int]) -> dict:
    out = {}
    for backend in ("slurm", "local"):
        for n in counts:
            runs = [lab_run(f"--backend {backend} --workers {n} --size 1000") for _ in range(repeat)]
            out[f"{backend}_{n}_seconds"] = stats([r["startup_seconds"] for r in runs])
    return out


def study_overhead(repeat: int, size: int, counts: list[int]) -> dict:
    out: dict = {"size": size, "parts": 4}
    for n in counts:
        slurm_runs, local_runs = [], []
        for _ in range(repeat):  # interleaved, so both see the same machine
            slurm_runs.append(lab_run(f"--backend slurm --workers {n} --size {size}"))
            local_runs.append(lab_run(f"--backend local --workers {n} --size {size}"))
        s = statistics.median(r["compute_seconds"] for r in slurm_runs)
        loc = statistics.median(r["compute_seconds"] for r in local_runs)
        cores = min(r["cores_available"] for r in slurm_runs)
        out[f"{n}_workers"] = {
            "slurm_compute_seconds": stats([r["compute_seconds"] for r in slurm_runs]),
            "local_compute_seconds": stats([r["compute_seconds"] for r in local_runs]),
            "slurm_over_local": round(s / loc, 3), "limit": min(n, 4, cores),
        }
    one = out[f"{counts[0]}_workers"]
    for n in counts:
        row = out[f"{n}_workers"]
        for backend in ("slurm", "local"):
            speedup = one[f"{backend}_compute_seconds"]["median"] / row[f"{backend}_compute_seconds"]["median"]
            row[f"{backend}_speedup"] = round(speedup, 3)
            row[f"{backend}_speedup_of_limit"] = round(speedup / row["limit"], 3)
    return out


def schedulers_at_two(repeat: int, size: int) -> dict:
    """The lesson's point, measured: each scheduler's speedup at 2 workers on the
    pure-Python kernel (lab study, every scheduler timed the same way), from each
    repeat's pair of timings: min / median / max."""
    folder = f"/tmp/bench-study-{time.monotonic_ns()}"
    sh("docker", "compose", "exec", "-T", "-u", "learner", "login", "bash", "-lc",
       f"lab study --schedulers threads processes local slurm --kernels python --workers 1 2 "
       f"--size {size} --repeat {repeat} --results {folder}")
    rows = json.loads(sh("docker", "compose", "exec", "-T", "-u", "learner", "login", "bash", "-c",
                         f"cat {folder}/*/results.json").stdout)
    out = {}
    for scheduler in ("threads", "processes", "local", "slurm"):
        one, two = (next(r for r in rows if r["scheduler"] == scheduler and r["workers_requested"] == n)
                    for n in (1, 2))
        out[scheduler] = stats([a / b for a, b in zip(one["compute_times"], two["compute_times"], strict=True)])
    return out


def end_to_end(repeat: int) -> dict:
    """What `make run WORKERS=4` runs on a warm cluster (docker compose exec ...
    lab run --workers 4), and the phases of those same runs from lab's own clock."""
    walls, phases = [], []
    for _ in range(repeat):
        start = time.monotonic()
        phases.append(lab_run("--workers 4")["phases"])
        walls.append(time.monotonic() - start)
    out = {"make_run_seconds": stats(walls)}
    for phase in phases[0]:
        out[f"{phase}_seconds"] = stats([p[phase] for p in phases])
    return out


def sizes() -> dict:
    out = {}
    for tag in IMAGES:
        size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", tag).stdout)
        out[tag] = round(size / 1e6, 1)
    sif = ROOT / "lab.sif"
    out["lab.sif"] = round(sif.stat().st_size / 1e6, 1) if sif.exists() else None
    out["note"] = "MB (10^6 bytes); lab.sif is None where apptainer is missing: it is built from the lab image"
    return out


def memory(repeat: int) -> dict:
    """Memory of the idle cluster and of one worker and its nanny, `repeat` samples each."""
    idle, worker, nanny = [], [], []
    for _ in range(repeat):
        ids = sh("docker", "compose", "ps", "-q").stdout.split()
        out = sh("docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids).stdout
        idle.append(sum(parse_size(line.split()[1]) for line in out.splitlines()) / 2**20)
        rss = json.loads(sh("docker", "compose", "exec", "-T", "-u", "learner", "login", "python", "-c",
                            WORKER_RSS).stdout)
        worker.append(rss["worker"])
        nanny.append(rss["nanny"])
    return {"idle_cluster_mib": stats(idle), "worker_mib": stats(worker), "nanny_mib": stats(nanny)}


WORKER_RSS = """
import json, psutil
from dask.distributed import Client
from dask_jobqueue import SLURMCluster
import lab.config
with SLURMCluster(scheduler_options={"dashboard_address": ":0"}) as cluster, Client(cluster) as client:
    cluster.scale(1)
    client.wait_for_workers(1, timeout=120)
    def rss():
        me = psutil.Process()
        return {"worker": me.memory_info().rss / 2**20, "nanny": me.parent().memory_info().rss / 2**20}
    (got,) = client.run(rss).values()
print(json.dumps({k: round(v, 1) for k, v in got.items()}))
"""


def parse_size(text: str) -> float:
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def markdown(results: dict) -> str:
    r = results
    lines = [f"# make bench: {r['machine']['date']}", "",
             f"{r['machine']['cores']} cores, {r['machine']['memory_gib']} GiB, {r['machine']['system']}, "
             f"Docker {r['machine']['docker']}; min / median / max of {r['repeat']} runs.", "",
             "| figure | min | median | max |", "|---|---|---|---|"]

    def row(name, s):
        if s:
            lines.append(f"| {name} | {s['min']} | {s['median']} | {s['max']} |")

    row("warm `make up` to ready (s)", r["ready"].get("warm_seconds"))
    row("cold `make up` to ready (s)", r["ready"].get("cold_seconds"))
    for key, s in r["startup"].items():
        backend, n, _ = key.split("_")
        row(f"scale({n}) to {n} connected, {backend} (s)", s)
    for key, s in r["study"].items():
        if key.endswith("_workers"):
            row(f"compute, {key.replace('_', ' ')}, slurm (s)", s["slurm_compute_seconds"])
            row(f"compute, {key.replace('_', ' ')}, local (s)", s["local_compute_seconds"])
    for key, s in r["end_to_end"].items():
        row(f"`make run WORKERS=4`: {key.replace('_seconds', '').replace('_', ' ')} (s)", s)
    lines += ["", "| workers | slurm / local | slurm speedup (of limit) | local speedup (of limit) | limit |",
              "|---|---|---|---|---|"]
    for key, s in r["study"].items():
        if key.endswith("_workers"):
            lines.append(f"| {key.split('_')[0]} | {s['slurm_over_local']} | {s['slurm_speedup']} "
                         f"({s['slurm_speedup_of_limit']}) | {s['local_speedup']} ({s['local_speedup_of_limit']}) "
                         f"| {s['limit']} |")
    if r.get("schedulers"):
        lines += ["", "| speedup at 2 workers, pure-Python kernel | min | median | max |", "|---|---|---|---|"]
        lines += [f"| {name} | {s['min']} | {s['median']} | {s['max']} |" for name, s in r["schedulers"].items()]
    lines += ["", "| image | MB |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r["sizes"].items() if k != "note"]
    lines += ["", "| memory (MiB) | min | median | max |", "|---|---|---|---|"]
    for key, s in r["memory"].items():
        lines.append(f"| {key.removesuffix('_mib').replace('_', ' ')} | {s['min']} | {s['median']} | {s['max']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run each, small sizes: a smoke test")
    parser.add_argument("--cold", action="store_true", help="also time cold starts (removes the images)")
    parser.add_argument("--size", type=int, default=11_000_000, help="about 2 s on one worker here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    repeat = 1 if args.quick else args.repeat
    counts = [1, 4] if args.quick else [1, 4, 8]
    mem = sh("free", "-g").stdout.split("\n")[1].split()[1]
    results = {
        "machine": {"cores": os.cpu_count(), "memory_gib": int(mem), "system": platform.platform(),
                    "docker": sh("docker", "version", "-f", "{{.Server.Version}}").stdout.strip(),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "repeat": repeat, "quick": args.quick,
    }
    try:
        print(f"bench: time to a ready cluster (project {PROJECT}) ...", file=sys.stderr)
        results["ready"] = ready_cluster(repeat, args.cold and not args.quick)
        print("bench: worker start-up ...", file=sys.stderr)
        results["startup"] = worker_startup(repeat, counts)
        print("bench: study overhead, slurm against local ...", file=sys.stderr)
        results["study"] = study_overhead(repeat, 200_000 if args.quick else args.size, [1, 2, 4])
        print("bench: each scheduler's speedup at 2 workers ...", file=sys.stderr)
        results["schedulers"] = schedulers_at_two(repeat, 200_000 if args.quick else args.size)
        print("bench: make run WORKERS=4 ...", file=sys.stderr)
        results["end_to_end"] = end_to_end(repeat)
        results["sizes"] = sizes()
        results["memory"] = memory(repeat)
    finally:
        remove_own_cluster()
        subprocess.run(["rm", "-rf", str(SCRATCH)], check=False)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(results, indent=2) + "\n"), ("results.md", markdown(results))):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, args.out / name)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
