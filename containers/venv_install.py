#!/usr/bin/python3
"""venv-install: the image's Python environment, as small as its role allows.

    venv-install make VENV LOCK WHEELHOUSE [--without NAME ...]
        A venv with the lock's packages from the wheelhouse (hashes checked,
        never the network), less NAME and whatever only NAME needs (the
        lock's "# via" lines say who needs what): compute nodes run workers,
        which plot nothing and serve no dashboard, so their image goes
        without matplotlib and bokeh. No pip, setuptools or test suites; the
        extension modules stripped of their symbol tables and debug
        sections (27 MB of the lab's venv, which nothing at run time reads);
        libraries that auditwheel grafted in (*.libs) are left as they are;
        UNUSABLE files deleted.
    venv-install compile VENV
        Byte-compiles what the lab's processes import, by running them: a
        run on a local cluster (client, scheduler, dashboard, a nanny and
        its worker), the worker command of a Slurm job, and where matplotlib
        is installed a study with its plot. Nothing then compiles at start
        (the image is read-only to the learner, and a SIF to everyone); the
        modules nothing imports (most of fontTools, for one) stay source
        only: 20 MB less than compiling everything.

Runs inside the image build with Debian's python3, standard library only."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PIP_WHEEL = "/usr/share/python-wheels"
# Files of the installed packages that nothing here can use, deleted.
UNUSABLE = {
    "bokeh/server/static/js/compiler.js": "bokeh's TypeScript compiler, run only by Node.js, which no image has",
}


def lock_entries(text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (the entry's lines, what it is there for: the first word of each "# via" line)."""
    entries: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.strip()):
        if block.startswith("#"):  # the header
            continue
        via = {found.lower() for found in re.findall(r"^[ \t]*#[ \t]+(?:via[ \t]+)?(\S+)", block, re.M)} - {"via"}
        entries[block.split("==", 1)[0].lower()] = (block.rstrip() + "\n", via)
    return entries


def without(text: str, names: list[str]) -> tuple[str, list[str]]:
    """The lock less NAMES and what only they need; and what was left out."""
    entries = lock_entries(text)
    unknown = [name for name in names if name.lower() not in entries]
    if unknown:
        sys.exit(f"venv-install: error: not in the lock: {' '.join(unknown)}")
    dropped = {name.lower() for name in names}
    changed = True
    while changed:  # what is there only for dropped packages goes too
        changed = False
        for name, (_, via) in entries.items():
            if name not in dropped and via and via <= dropped:  # the lab's own needs stay
                dropped.add(name)
                changed = True
    kept = "".join(lines for name, (lines, _) in entries.items() if name not in dropped)
    return kept, sorted(dropped)


def pip(venv: Path, *args: str) -> None:
    wheel = next(Path(PIP_WHEEL).glob("pip-*.whl"))
    subprocess.run([sys.executable, f"{wheel}/pip", "--python", f"{venv}/bin/python", "-q", *args], check=True)


def make(venv: Path, lock: Path, wheelhouse: Path, names: list[str]) -> None:
    kept, dropped = without(lock.read_text(), names)
    if dropped:
        print(f"venv-install: without {' '.join(dropped)}")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".lock") as chosen:
        chosen.write(kept)
        chosen.flush()
        pip(venv, "install", "--no-cache-dir", "--no-index", "--find-links", str(wheelhouse), "--no-compile",
            "--require-hashes", "-r", chosen.name)
    pip(venv, "uninstall", "-y", "setuptools", "wheel")
    site = next((venv / "lib").glob("python3*/site-packages"))
    for path in UNUSABLE:
        (site / path).unlink(missing_ok=True)
    for tests in sorted(site.rglob("tests"), key=lambda p: -len(p.parts)):
        if tests.is_dir():
            shutil.rmtree(tests)
    modules = [str(p) for p in site.rglob("*.so*") if p.is_file() and not any(
        part.endswith(".libs") for part in p.relative_to(site).parts)]
    subprocess.run(["strip", "--strip-unneeded", *modules], check=True)


def compile_imports(venv: Path) -> None:
    """Run what the lab runs, letting Python write the byte code of what it imports."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    python = f"{venv}/bin/python"
    with tempfile.TemporaryDirectory() as scratch:  # every file the runs write (results, caches) goes there
        env |= {"PATH": f"{venv}/bin:{env.get('PATH', '/usr/bin:/bin')}", "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": scratch, "TMPDIR": scratch, "HOME": scratch, "DASK_LAB__DASHBOARD_ADDRESS": ":0"}
        runs = [["lab", "run", "--backend", "local", "--workers", "1", "--parts", "2", "--size", "1000"],
                [python, "-c", "import distributed.cli.dask_worker, dask_jobqueue"]]
        if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode == 0:
            runs.append(["lab", "study", "--schedulers", "threads", "--kernels", "numpy", "--workers", "1",
                         "--size", "1000", "--repeat", "1", "--results", scratch])
        for command in runs:
            subprocess.run(command, check=True, cwd=scratch, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(prog="venv-install", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    made = sub.add_parser("make")
    made.add_argument("venv", type=Path)
    made.add_argument("lock", type=Path)
    made.add_argument("wheelhouse", type=Path)
    made.add_argument("--without", nargs="*", default=[], metavar="NAME")
    compiled = sub.add_parser("compile")
    compiled.add_argument("venv", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.venv, args.lock, args.wheelhouse, args.without)
    else:
        compile_imports(args.venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
