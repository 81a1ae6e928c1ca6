"""`make bench`: the lab's own speed and cost on this machine, next to a bare
LocalCluster. Writes bench/results.json and bench/results.md; every figure is
min / median / max over --repeat runs. Runs a real cluster of its own (compose
project dask-slurm-lab-bench, its own folders and dashboard port), so a user's
cluster, volumes and folders are never touched, and removes it at the end.
--cold rebuilds the images without Docker's build cache (--no-cache): it
deletes no image and no cache.

    python -m bench.bench [--repeat 3] [--quick] [--cold] [--out bench]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab import config
from lab.results import write_atomic

# The cluster driver the tests use too: the images' tag, the default node count, `lab run --json`.
from tools.cluster import IMAGE_NAMES, NODES, ROOT, Cluster, image

IMAGES = tuple(image(name) for name in IMAGE_NAMES)
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


# The start-up chain, in compose's order: init makes the secrets, each Slurm
# role waits for the port of the one before it, then cluster-ready runs a test job.
CHAIN = ("init", "db", "slurmdbd", "slurmctld", "compute", "login")


def watch_events(since: float) -> tuple[subprocess.Popen, Path]:
    """The engine's events of this project from `since` on, streamed into a
    file: the engine keeps only its last thousand or so events, which a busy
    machine's containers use up quickly, so asking afterwards may find
    the first ones gone; and a pipe left unread fills and stalls the stream."""
    log = SCRATCH / f"events-{time.monotonic_ns()}.jsonl"
    with open(log, "w") as out:
        watcher = subprocess.Popen(
            ["docker", "events", "--since", f"{since:.3f}", "--filter", "type=container",
             "--filter", f"label=com.docker.compose.project={PROJECT}", "--filter", "event=start",
             "--filter", "event=die", "--format", "{{json .}}"],
            stdout=out, env=ENV)
    return watcher, log


def stop_watching(watcher: tuple[subprocess.Popen, Path]) -> str:
    process, log = watcher
    time.sleep(0.5)  # the last events on their way
    process.terminate()
    process.wait(timeout=30)
    return log.read_text()


def chain_times(start: float, events: str) -> dict:
    """For each service of the chain, the seconds from `make up`'s start until it
    started (the engine's events, watch_events) and until its start was done:
    init ended; each other role wrote /run/lab-role, having waited for what it
    needs, and handed over to its daemon. Compute: the last of the nodes."""
    first: dict[tuple[str, str, str], float] = {}
    for line in events.splitlines():
        try:
            event = json.loads(line)
        except ValueError:  # a line cut short when the watch stopped
            continue
        attributes = event["Actor"]["Attributes"]
        service, action = attributes["com.docker.compose.service"], event["Action"]
        if action == "start":
            moment = "started"
        elif action == "die" and service == "init":
            moment = "ready"
        else:
            continue
        first.setdefault((service, attributes["name"], moment), event["timeNano"] / 1e9 - start)
    for service in CHAIN[1:]:
        for index in range(1, (NODES if service == "compute" else 1) + 1):
            done = sh("docker", "compose", "exec", "-T", "--index", str(index), service,
                      "stat", "-c", "%.9Y", "/run/lab-role").stdout
            first[(service, str(index), "ready")] = float(done) - start  # the same clock: one kernel
    out: dict[str, dict[str, float]] = {}
    for (service, _, moment), seconds in first.items():
        seen = out.setdefault(service, {})
        seen[moment] = max(seen.get(moment, 0.0), seconds)  # compute: the last of the nodes
    return out


def ready_cluster(repeat: int, cold: bool) -> dict:
    """Seconds of `make up` to a ready cluster (a test job has run), and where
    they go: each service of the chain started and done starting, then cluster-ready."""
    out: dict = {}
    warm, chains = [], []
    sh("make", "--no-print-directory", "images")  # warm: built from the sources as they are, untimed
    for _ in range(repeat):  # images built, no volumes
        remove_own_cluster()
        start = time.time()
        watcher = watch_events(start)
        try:
            warm.append(timed("make", "--no-print-directory", "up", f"NODES={NODES}"))
        finally:
            events = stop_watching(watcher)
        chains.append(chain_times(start, events))
    out["warm_seconds"] = stats(warm)
    out["chain"] = {service: {moment: stats([chain[service][moment] for chain in chains])
                              for moment in ("started", "ready")}
                    for service in CHAIN if all(service in chain for chain in chains)}
    if cold:
        cold_times = []
        for _ in range(repeat):  # every image layer built again, no volumes; the base image stays
            remove_own_cluster()
            start = time.monotonic()
            sh("docker", "compose", "build", "--no-cache", "-q", "lab", "worker")  # the bases, as make does
            sh("docker", "compose", "build", "--no-cache", "-q")
            sh("make", "--no-print-directory", "up", f"NODES={NODES}")
            cold_times.append(time.monotonic() - start)
        out["cold_seconds"] = stats(cold_times)
    return out


def lab_run(flags: str, env: str = "") -> dict:
    """`lab run` on the login node as the learner; its JSON result."""
    result, done = CLUSTER.lab_run(flags, timeout=900, env=env)
    if result is None:
        raise SystemExit(f"bench: lab run {flags} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return result


def worker_startup(repeat: int, counts: list[int]) -> dict:
    """Seconds from scale(n) to n connected workers, SLURM and local, each repeat
    a pair of runs side by side (so their ratio compares the same moment)."""
    out = {}
    for n in counts:
        pairs = [{backend: lab_run(f"--backend {backend} --workers {n} --size 1000")["startup_seconds"]
                  for backend in ("slurm", "local")} for _ in range(repeat)]
        for backend in ("slurm", "local"):
            out[f"{backend}_{n}_seconds"] = stats([pair[backend] for pair in pairs])
        out[f"ratio_{n}"] = stats([pair["slurm"] / pair["local"] for pair in pairs])
    # For comparison only (the lab's workers stay as dask-jobqueue makes them):
    # what the nanny costs (each worker job is then one interpreter, not two),
    # and what the second interpreter's imports cost (the nanny forks its
    # worker, with everything imported, instead of spawning a fresh python).
    n = 4
    for name, env in (("no-nanny", "DASK_JOBQUEUE__SLURM__NANNY=false"),
                      ("fork", "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=fork")):
        out[f"slurm-{name}_{n}_seconds"] = stats([
            lab_run(f"--backend slurm --workers {n} --size 1000", env=env)["startup_seconds"]
            for _ in range(repeat)])
    return out


# Every worker job prints the moment its script starts (one clock for all: the
# containers share the host's); dask's log lines carry the others.
JOB_START_PROLOGUE = '["echo lab-bench-job-start $(date +%s.%N) $(date +%z)"]'
LOG_MOMENTS = {"nanny": "Start Nanny at", "worker": "Start worker at", "connected": "Registered to"}


LAUNCH_PARTS = {"slurm": "scale() to its job script's start (Slurm)",
                "nanny": "script start to its nanny's start (a python importing dask)",
                "worker": "nanny to its worker's start (a second python importing dask)",
                "connect": "worker start to connected", "total": "in all"}


def job_moments(log: str) -> dict[str, float]:
    """A worker job's log: when its script started, its nanny, its worker, and
    when it connected (seconds since the epoch)."""
    moments: dict[str, float] = {}
    offset = None
    for line in log.splitlines():
        if line.startswith("lab-bench-job-start "):
            _, epoch, zone = line.split()
            moments["job"] = float(epoch)
            sign = -1 if zone.startswith("-") else 1
            offset = sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
        for name, marker in LOG_MOMENTS.items():
            if marker in line and name not in moments and offset is not None:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                moments[name] = stamp.replace(tzinfo=datetime.UTC).timestamp() - offset
    return moments


def slurm_launch(repeat: int, n: int = 4) -> dict:
    """Where scale(n)'s seconds go on SLURM, for the job the run waited for
    (the last to connect): Slurm (scale() to its job script's start), the nanny
    (a python importing dask), the worker (the nanny spawns a second python that
    imports dask again), its connection to the scheduler."""
    parts: dict[str, list[float]] = {"slurm": [], "nanny": [], "worker": [], "connect": [], "total": []}
    for index in range(repeat):
        folder = f"$HOME/.bench-launch-{time.monotonic_ns()}"
        env = (f"DASK_JOBQUEUE__SLURM__JOB_SCRIPT_PROLOGUE='{JOB_START_PROLOGUE}' "
               f"DASK_JOBQUEUE__SLURM__LOG_DIRECTORY={folder}")
        startup = lab_run(f"--backend slurm --workers {n} --size 1000", env=env)["startup_seconds"]
        logs = CLUSTER.out(f"for f in {folder}/*.out; do cat $f ${{f%.out}}.err; echo lab-bench-end; done; "
                           f"rm -rf {folder}")  # the script's start in .out, dask's log in .err
        jobs = [job_moments(log) for log in logs.split("lab-bench-end\n") if log.strip()]
        if len(jobs) != n or any(set(job) != {"job", *LOG_MOMENTS} for job in jobs):
            raise SystemExit(f"bench: run {index + 1} of slurm_launch: cannot read {n} jobs' moments:\n{logs[-3000:]}")
        last = max(jobs, key=lambda job: job["connected"])
        scale = last["connected"] - startup  # the run counts from scale() to the last connection
        for name, (start, end) in {"slurm": (scale, last["job"]), "nanny": (last["job"], last["nanny"]),
                                   "worker": (last["nanny"], last["worker"]),
                                   "connect": (last["worker"], last["connected"])}.items():
            parts[name].append(end - start)
        parts["total"].append(startup)
    return {f"{name}_seconds": stats(values) for name, values in parts.items()}


CEILING = """
import json, subprocess, sys, time
# One python per process, its kernel imported and warm before the clock starts;
# each times its own parts, so no start-up is counted.
PART = (
    "import sys, time\\n"
    "from lab.graph import compute_part\\n"
    "size, count = int(sys.argv[1]), int(sys.argv[2])\\n"
    "compute_part(1000)\\n"
    "print('ready', flush=True)\\n"
    "sys.stdin.readline()\\n"
    "start = time.monotonic()\\n"
    "for _ in range(count):\\n"
    "    compute_part(size)\\n"
    "print(time.monotonic() - start, flush=True)\\n"
)
def seconds(size, counts):
    procs = [subprocess.Popen([sys.executable, "-c", PART, str(size), str(count)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for count in counts]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\\n")
        proc.stdin.flush()
    return max(float(proc.communicate()[0]) for proc in procs)
size, parts, repeat = (int(a) for a in sys.argv[1:])
print(json.dumps([[seconds(size, [parts]), seconds(size, [parts // 2] * 2)] for _ in range(repeat)]))
"""


def share_of_two(one_process: float, two_processes: float) -> float:
    """The share of a speedup of 2 that two processes got: the seconds of one
    process doing every part over the seconds of two doing half each, halved
    (1.0: two cores' worth)."""
    return one_process / two_processes / 2


def machine_ceiling(repeat: int, size: int, parts: int = 4) -> dict:
    """What this machine's cores give two processes of the lesson's kernel, no
    dask at all: `parts` parts of `size` in one python, then half each in two at
    once, on the login node (the lab image's python): the share of 2 this host
    gives two processes at all, to read the schedulers' shares against (it
    moves between repeats as they do)."""
    pairs = json.loads(CLUSTER.out(f"python -c {shlex.quote(CEILING)} {size} {parts} {repeat}", timeout=1800))
    return {"share_of_2": stats([share_of_two(one, two) for one, two in pairs])}


WORKER_START = """
import json, subprocess, sys, time
def seconds(code):
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - start
print(json.dumps({"interpreter": seconds("pass"), "worker_imports": seconds("import distributed.cli.dask_worker")}))
"""


def worker_start(repeat: int) -> dict:
    """What a worker job's python spends before it can connect, on a compute
    node: the interpreter's start, and importing dask's worker."""
    runs = [json.loads(sh("docker", "compose", "exec", "-T", "-u", "learner", "compute", "python", "-c",
                          WORKER_START).stdout) for _ in range(repeat)]
    return {f"{key}_seconds": stats([run[key] for run in runs]) for key in runs[0]}


def study_overhead(repeat: int, size: int, counts: list[int]) -> dict:
    out: dict = {"size": size, "parts": 4}
    runs: dict[int, dict[str, list[dict]]] = {}
    for n in counts:
        slurm_runs, local_runs = [], []
        for _ in range(repeat):  # interleaved, so both see the same machine
            slurm_runs.append(lab_run(f"--backend slurm --workers {n} --size {size}"))
            local_runs.append(lab_run(f"--backend local --workers {n} --size {size}"))
        runs[n] = {"slurm": slurm_runs, "local": local_runs}
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
            # Each repeat's own: its run at 1 worker against its run at n.
            row[f"{backend}_of_limit"] = stats([
                one_run["compute_seconds"] / n_run["compute_seconds"] / row["limit"]
                for one_run, n_run in zip(runs[counts[0]][backend], runs[n][backend], strict=True)])
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


def sizes(build_sif: bool) -> dict:
    """The images' sizes, and lab.sif's, made from the lab image into the
    bench's own folder (make sif's script; the user's lab.sif is never touched)."""
    out: dict = {}
    for tag in IMAGES:
        size = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", tag).stdout)
        out[tag] = round(size / 1e6, 1)
    sif = SCRATCH / "lab.sif"
    if build_sif:
        sh("containers/make-sif.sh", str(sif), timeout=1800)
    out["lab.sif"] = round(sif.stat().st_size / 1e6, 1) if sif.exists() else None
    out["note"] = "MB (10^6 bytes); lab.sif: None in --quick runs, which do not build it"
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


def idle_cpu(repeat: int, seconds: float) -> dict:
    """The host's CPU busy share (all cores, /proc/stat) while the cluster is idle:
    what the workers' timings lack. Everything on the host counts."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # all, idle + iowait
    shares = []
    for _ in range(repeat):
        total, idle = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
        shares.append(1 - (idle2 - idle) / (total2 - total))
    return {"busy_share": stats(shares), "seconds": seconds}


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


def single(value: float | None) -> dict | None:
    """One measurement as a figure (a size: the same every time)."""
    return None if value is None else {"min": value, "median": value, "max": value, "n": 1, "values": [value]}


def targets(r: dict) -> list[dict]:
    """Each target the lab was given (issue 15), this run's figure for it, and
    whether its median meets it."""
    rows = []

    def add(figure: str, s: dict | None, limit: float | None, unit: str, at_most: bool = True):
        if s is None:
            return
        met = None if limit is None else (s["median"] <= limit if at_most else s["median"] >= limit)
        rows.append({"figure": figure, "target": "reported" if limit is None else
                     f"{'<=' if at_most else '>='} {limit:g}{unit}", "min": s["min"], "median": s["median"],
                     "max": s["max"], "met": met})

    add("warm `make up` to ready (s)", r["ready"]["warm_seconds"], 8, " s")
    add("cold `make up` to ready, no images, base image present (s)", r["ready"].get("cold_seconds"), 60, " s")
    add("scale(4) to 4 connected, SLURM (s)", r["startup"].get("slurm_4_seconds"), 2.5, " s")
    add("scale(4), SLURM / local in the same run", r["startup"].get("ratio_4"), 1.5, "x")
    # The lesson's measure (lab study: the compute timed again and again on the
    # same workers), then the same share from single `lab run`s, where the one
    # compute comes right after the workers' start.
    limit = r["study"].get("2_workers", {}).get("limit")
    for backend in ("slurm", "local"):
        speedup = r.get("schedulers", {}).get(backend)
        add(f"speedup at 2 workers, share of the limit, {backend} (lab study)",
            speedup and limit and {k: round(speedup[k] / limit, 3) for k in ("min", "median", "max")},
            0.95, "", at_most=False)
    for backend in ("slurm", "local"):
        add(f"the same from single `lab run`s, {backend}",
            r["study"].get("2_workers", {}).get(f"{backend}_of_limit"), None, "")
    add("two bare pythons of the kernel at once, no dask: share of 2 "
        "(what this host gives two processes, to read the rows above against)",
        r.get("ceiling", {}).get("share_of_2"), None, "")
    add("lab image (MB)", single(r["sizes"].get(IMAGES[0])), 300, " MB")
    add("compute node image (MB)", single(r["sizes"].get(image("node"))), 300, " MB")
    add("lab.sif (MB)", single(r["sizes"].get("lab.sif")), None, "")
    return rows


def markdown(results: dict) -> str:
    r = results
    lines = [f"# make bench: {r['machine']['date']}", "",
             f"{r['machine']['cores']} cores, {r['machine']['memory_gib']} GiB, {r['machine']['system']}, "
             f"Docker {r['machine']['docker']}; min / median / max of {r['repeat']} runs."]

    def row(name, s):
        if s:
            lines.append(f"| {name} | {s['min']} | {s['median']} | {s['max']} |")

    lines += ["", "Targets (met: the median meets it):", "",
              "| figure | target | min | median | max | met |", "|---|---|---|---|---|---|"]
    lines += [f"| {t['figure']} | {t['target']} | {t['min']} | {t['median']} | {t['max']} | "
              f"{'-' if t['met'] is None else 'yes' if t['met'] else 'no'} |" for t in r["targets"]]
    lines += ["", "All figures:", "", "| figure | min | median | max |", "|---|---|---|---|"]
    row("warm `make up` to ready (s)", r["ready"].get("warm_seconds"))
    row("cold `make up` to ready (s)", r["ready"].get("cold_seconds"))
    for key, s in r["startup"].items():
        if key.startswith("ratio_"):
            n = key.split("_")[1]
            row(f"scale({n}), slurm / local in the same run", s)
        else:
            backend, n, _ = key.split("_")
            row(f"scale({n}) to {n} connected, {backend} (s)", s)
    for key, s in r.get("slurm_launch", {}).items():
        row(f"scale(4), SLURM, the last job to connect: {LAUNCH_PARTS[key.removesuffix('_seconds')]} (s)", s)
    for key, s in r.get("worker_start", {}).items():
        row(f"a worker job's python on a compute node: {key.removesuffix('_seconds').replace('_', ' ')} (s)", s)
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
    if r["ready"].get("chain"):
        lines += ["", "Where warm `make up` goes (seconds from its start, medians): make checks the images, "
                  "init makes the secrets, each Slurm role then waits for the port of the one before it "
                  "and starts its daemon, and cluster-ready runs a test job once the nodes are idle:", "",
                  "| service | started | start done, daemon starting (init: ended) |", "|---|---|---|"]
        lines += [f"| {name} | {s['started']['median']} | {s['ready']['median']} |"
                  for name, s in r["ready"]["chain"].items()]
        lines.append(f"| cluster-ready (test job) | | {r['ready']['warm_seconds']['median']} |")
    if r.get("schedulers"):
        lines += ["", "| speedup at 2 workers, pure-Python kernel | min | median | max |", "|---|---|---|---|"]
        lines += [f"| {name} | {s['min']} | {s['median']} | {s['max']} |" for name, s in r["schedulers"].items()]
    lines += ["", "| image | MB |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r["sizes"].items() if k != "note"]
    lines += ["", "| memory (MiB) | min | median | max |", "|---|---|---|---|"]
    for key, s in r["memory"].items():
        lines.append(f"| {key.removesuffix('_mib').replace('_', ' ')} | {s['min']} | {s['median']} | {s['max']} |")
    if r.get("idle_cpu"):
        s = r["idle_cpu"]["busy_share"]
        lines += ["", f"| idle cluster: host CPU busy, share of all cores ({r['idle_cpu']['seconds']} s) "
                  "| min | median | max |", "|---|---|---|---|", f"| busy | {s['min']} | {s['median']} | {s['max']} |"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run each, small sizes: a smoke test")
    parser.add_argument("--cold", action="store_true", help="also time cold starts (removes the images)")
    parser.add_argument("--size", type=int, default=config.lab("size"),
                        help="numbers each part sums (default: the lesson's, lab.size)")
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
        results["slurm_launch"] = slurm_launch(repeat)
        print("bench: study overhead, slurm against local ...", file=sys.stderr)
        results["study"] = study_overhead(repeat, 200_000 if args.quick else args.size, [1, 2, 4])
        results["ceiling"] = machine_ceiling(repeat, 200_000 if args.quick else args.size)
        print("bench: each scheduler's speedup at 2 workers ...", file=sys.stderr)
        results["schedulers"] = schedulers_at_two(repeat, 200_000 if args.quick else args.size)
        print("bench: make run WORKERS=4 ...", file=sys.stderr)
        results["end_to_end"] = end_to_end(repeat)
        results["worker_start"] = worker_start(repeat)
        results["sizes"] = sizes(build_sif=not args.quick)
        results["memory"] = memory(repeat)
        results["idle_cpu"] = idle_cpu(repeat, 2 if args.quick else 20)
        results["targets"] = targets(results)
    finally:
        remove_own_cluster()
        subprocess.run(["rm", "-rf", str(SCRATCH)], check=False)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "results.json", json.dumps(results, indent=2) + "\n")
    write_atomic(args.out / "results.md", markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
