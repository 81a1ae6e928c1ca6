"""slurm-dev/give-home.py: the login node gives the learner their home (after
a change of LAB_UID too) as root, while the learner may still have processes:
it follows no link at any depth, keeps the host's folders' owner, and does
nothing when the uid has not changed."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from tools.cluster import ROOT

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="gives files away: needs root")
USER = pwd.getpwuid(65534).pw_name  # nobody: a user every Linux has, with a uid that is not ours


def give(home) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, ROOT / "slurm-dev" / "give-home.py", str(home), USER, "work", "results"],
                          capture_output=True, text=True, check=True)


def owner(path) -> int:
    return os.lstat(path).st_uid


def test_gives_the_home_but_no_link_target_and_not_the_host_folders(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("root's")
    home = tmp_path / "home" / "learner"
    (home / "deep" / "er").mkdir(parents=True)
    (home / "deep" / "er" / "notes.txt").write_text("mine")
    (home / "deep" / "er" / "to-outside").symlink_to(outside)  # a link, deep down, to a folder outside
    (home / "secret-link").symlink_to(outside / "secret")
    for kept in ("work", "results"):
        (home / kept).mkdir()
        (home / kept / "data").write_text("the host's")
    give(home)
    nobody = pwd.getpwnam(USER).pw_uid
    for path in (home, home / "deep", home / "deep" / "er" / "notes.txt", home / "deep" / "er" / "to-outside",
                 home / "secret-link"):
        assert owner(path) == nobody, path
    assert owner(outside) == 0 and owner(outside / "secret") == 0  # never through a link
    assert owner(home / "work" / "data") == 0 and owner(home / "results") == 0  # the host's folders keep theirs


def test_does_nothing_when_the_uid_is_unchanged(tmp_path):
    home = tmp_path / "home" / "learner"
    home.mkdir(parents=True)
    give(home)
    (home / "made-by-root-since").write_text("x")  # e.g. root's own file, after the first start
    assert give(home).stderr == ""
    assert owner(home / "made-by-root-since") == 0
    record = tmp_path / "home" / f".lab-owner-{USER}"
    record.write_text("1:1\n")  # a different uid: everything is given again
    give(home)
    assert owner(home / "made-by-root-since") == pwd.getpwnam(USER).pw_uid
