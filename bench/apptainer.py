"""What Apptainer costs beside Docker, on this machine, in one run: a fresh
python of the lab that imports distributed, started by a real `apptainer exec
lab.sif` (Apptainer 1.4.5 as an ordinary user: user namespace, squashfuse,
in a container with what slurm-dev/apptainer.yaml gives the cluster's nodes)
and by `docker run` of the lab image, alternately, after one start of each
unmeasured; and the size of lab.sif (made by make sif's own script) beside
the lab image's. Writes bench/apptainer.json and bench/apptainer.md, which
`make figures` puts in the README.

    python -m bench.apptainer [--repeat 5] [--out bench]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.results import write_atomic
from tools.cluster import ROOT, build_apptainer_image, image

LAB = image("lab")
APPTAINER = image("slurm-apptainer")
IMPORT = "import distributed"
# The cluster's nodes' rules for an ordinary user's Apptainer (slurm-dev/apptainer.yaml).
USER_APPTAINER = ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                  "--security-opt", "systempaths=unconfined", "--device", "/dev/fuse"]


def sh(*cmd: str, timeout: float = 900) -> str:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def stats(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "n": len(values), "values": [round(v, 3) for v in values]}


def docker_run() -> float:
    """Seconds for `docker run` of the lab image's python importing distributed, timed here."""
    start = time.monotonic()
    sh("docker", "run", "--rm", "--entrypoint", "python", LAB, "-c", IMPORT)
    return time.monotonic() - start


def apptainer_exec(container: str) -> float:
    """Seconds for `apptainer exec lab.sif python` importing distributed, as the
    learner, timed inside the container (docker exec's own start is not Apptainer's)."""
    script = (f's=$(date +%s%N); apptainer exec /s/lab.sif python -c "{IMPORT}"; e=$(date +%s%N); '
              'echo $(((e - s) / 1000))')
    return int(sh("docker", "exec", "-u", "learner", container, "sh", "-c", script).split()[-1]) / 1e6


def measure(repeat: int, folder: Path) -> dict:
    sh("make", "--no-print-directory", "images", timeout=1800)
    built = build_apptainer_image()
    if built.returncode != 0:
        raise SystemExit(f"bench: the Apptainer image did not build:\n{built.stderr[-2000:]}")
    sif = folder / "lab.sif"
    sh("containers/make-sif.sh", str(sif), timeout=1800)
    sif.chmod(0o644)
    container = sh("docker", "run", "-d", "--rm", *USER_APPTAINER, "-v", f"{folder}:/s:ro",
                   "--entrypoint", "sleep", APPTAINER, "infinity").strip()
    try:
        sh("docker", "exec", container, "chmod", "0666", "/dev/fuse")
        version = sh("docker", "exec", container, "apptainer", "--version").strip()
        apptainer_exec(container), docker_run()  # each once unmeasured: files in the page cache
        runs = [(apptainer_exec(container), docker_run()) for _ in range(repeat)]
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    lab_bytes = int(sh("docker", "image", "inspect", "-f", "{{.Size}}", LAB))
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cores": os.cpu_count(), "apptainer": version,
            "repeat": repeat, "apptainer_exec_seconds": stats([a for a, _ in runs]),
            "docker_run_seconds": stats([d for _, d in runs]),
            "lab_sif_mb": round(sif.stat().st_size / 1e6, 1), "lab_image_mb": round(lab_bytes / 1e6, 1)}


def markdown(r: dict) -> str:
    a, d = r["apptainer_exec_seconds"], r["docker_run_seconds"]
    return "\n".join([
        f"Measured by `python -m bench.apptainer` ({r['date']}, {r['cores']} cores, {r['apptainer']}): "
        f"a fresh python that imports distributed, {r['repeat']} starts each, alternately.", "",
        "| started by | min (s) | median (s) | max (s) |", "|---|---|---|---|",
        f"| `apptainer exec lab.sif` (an ordinary user) | {a['min']} | {a['median']} | {a['max']} |",
        f"| `docker run` of the lab image | {d['min']} | {d['median']} | {d['max']} |", "",
        f"lab.sif: {r['lab_sif_mb']} MB; the lab image it is made from: {r['lab_image_mb']} MB "
        "(MB: 10^6 bytes)."]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="lab-bench-sif-") as folder:
        os.chmod(folder, 0o755)
        results = measure(args.repeat, Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "apptainer.json", json.dumps(results, indent=2) + "\n")
    write_atomic(args.out / "apptainer.md", markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
