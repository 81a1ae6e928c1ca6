"""Does every pinned part of the images exist for arm64 (Apple Silicon)?

This machine cannot build or run arm64 images (no QEMU user emulation is
registered with binfmt_misc here, and Docker's builder has no buildx), so
instead of a build this checks the pins themselves:

- every wheel of requirements.lock exists for the image's CPython (its python3= pin) on aarch64 Linux,
  with its locked hash (pip download, the way containers/wheelhouse.sh
  fetches the x86_64 ones);
- every Debian package pinned in the Dockerfiles exists for arm64 in
  Debian's archive at its version, or at a version of the same upstream
  release (what containers/apt-install falls back to).

    python3 containers/check_arm64.py        # exit 1 and the list when one is missing
"""

from __future__ import annotations

import lzma
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# The Debian sources the images use; the Apptainer stage (the Dockerfile's
# last, slurm-apptainer) adds sid for Apptainer alone.
IMAGES_SOURCES = ("debian.sources",)
APPTAINER_SOURCES = ("debian.sources", "sid.sources")


def debian_suites(sources: tuple[str, ...] = IMAGES_SOURCES) -> dict[str, list[str]]:
    """mirror -> suites, from containers/<sources>."""
    suites: dict[str, list[str]] = {}
    for name in sources:
        for stanza in (ROOT / "containers" / name).read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*): (.+)$", stanza, re.M))
            if "URIs" in fields:
                suites.setdefault(fields["URIs"].strip(), []).extend(fields["Suites"].split())
    return suites


def image_python() -> str:
    """major.minor of the image's Python (containers/image-python)."""
    return subprocess.run([str(ROOT / "containers" / "image-python")], capture_output=True, text=True,
                          check=True).stdout.strip()


def debian_pins(apptainer: bool = False) -> dict[str, str]:
    """package -> version, from the apt-install lines of the Dockerfiles: the
    images' (or, with apptainer, the slurm-apptainer stage's alone)."""
    pins: dict[str, str] = {}
    for name in ("containers/lab.Dockerfile", "containers/Dockerfile"):
        text = (ROOT / name).read_text()
        images, _, tool = text.partition("\nFROM slurm AS slurm-apptainer\n")
        text = tool if apptainer else images
        args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
        for package, version in re.findall(r"(?<![-\w])([a-z0-9][a-z0-9.+-]+)=(\$\{\w+\}|\d[^\s\\]*)", text):
            if version.startswith("${"):
                version = args[version[2:-1]]
            if not package.isupper():
                pins[package] = version
    return pins


def arm64_versions(sources: tuple[str, ...] = IMAGES_SOURCES) -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for mirror, suites in debian_suites(sources).items():
        for suite in suites:
            url = f"{mirror}/dists/{suite}/main/binary-arm64/Packages.xz"
            with urllib.request.urlopen(url, timeout=120) as answer:
                text = lzma.decompress(answer.read()).decode()
            for stanza in text.split("\n\n"):
                fields = dict(re.findall(r"^(Package|Version): (.*)$", stanza, re.M))
                if "Package" in fields:
                    versions.setdefault(fields["Package"], set()).add(fields["Version"])
    return versions


def missing_debian(pins: dict[str, str], sources: tuple[str, ...] = IMAGES_SOURCES) -> list[str]:
    there = arm64_versions(sources)
    missing = []
    for package, version in sorted(pins.items()):
        release = version.rsplit("-", 1)[0]
        found = there.get(package, set())
        if version not in found and not any(v.startswith(release + "-") for v in found):
            missing.append(f"{package}={version} (arm64 has: {' '.join(sorted(found)) or 'none'})")
    return missing


def missing_wheels(lock: Path = ROOT / "requirements.lock") -> list[str]:
    with tempfile.TemporaryDirectory() as dest:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--require-hashes", "-r", str(lock), "--dest", dest,
             "--only-binary=:all:", "--implementation", "cp", "--python-version", image_python(),
             "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux_2_17_aarch64",
             "--platform", "manylinux2014_aarch64", "--platform", "linux_aarch64"],
            capture_output=True, text=True)
    if done.returncode == 0:
        return []
    return [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or [done.stderr[-500:]]


def main() -> int:
    pins, tool_pins = debian_pins(), debian_pins(apptainer=True)
    missing = missing_debian(pins) + missing_debian(tool_pins, APPTAINER_SOURCES) + missing_wheels()
    for line in missing:
        print(f"arm64: missing {line}", file=sys.stderr)
    print(f"arm64: {len(pins) + len(tool_pins)} Debian pins and every locked wheel checked; "
          f"{len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
