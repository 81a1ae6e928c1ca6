"""arm64 (Apple Silicon): every pinned Debian package and locked wheel exists
for it (containers/check_arm64.py; this machine cannot build arm64 images)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.cluster import ROOT

sys.path.insert(0, str(ROOT / "containers"))
import check_arm64  # noqa: E402

pytestmark = pytest.mark.network


def test_every_pin_exists_for_arm64():
    done = subprocess.run([sys.executable, "containers/check_arm64.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Debian pins and every locked wheel checked; 0 missing" in done.stdout


def test_a_missing_pin_or_wheel_is_named():
    pinned = check_arm64.debian_pins()["procps"]  # e.g. 2:4.0.4-9
    assert check_arm64.missing_debian({"procps": "9.9.9-1"}) == [f"procps=9.9.9-1 (arm64 has: {pinned})"]
    release = pinned.rsplit("-", 1)[0]
    assert check_arm64.missing_debian({"procps": f"{release}-999"}) == []  # apt-install's fallback: same release


def test_a_wheel_not_in_the_lock_is_named(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("toolz==1.2.0 --hash=sha256:" + "0" * 64 + "\n")  # a hash no toolz wheel has
    missing = check_arm64.missing_wheels(lock)
    assert missing and "ERROR" in missing[0]
