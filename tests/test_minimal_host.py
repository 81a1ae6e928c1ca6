"""A host with only POSIX tools (what a stock Mac has: no GNU timeout,
sha256sum, readlink -f ...) plus docker, make and python3 runs `make up` and
`make run`: the test gives them a PATH holding exactly that."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tools.cluster import NODES

pytestmark = pytest.mark.cluster

POSIX = ["sh", "bash", "env", "cat", "cp", "mv", "rm", "mkdir", "ls", "chmod", "chown", "id", "uname", "sed",
         "awk", "grep", "head", "tail", "tr", "cut", "sort", "uniq", "wc", "date", "mktemp", "dirname",
         "basename", "touch", "sleep", "find", "xargs", "tar", "du", "printf", "test", "expr", "kill"]


@pytest.fixture(scope="module")
def minimal_path(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("minimal-bin")
    for tool in [*POSIX, "docker", "make"]:
        found = shutil.which(tool)
        assert found, f"{tool} is not on this machine"
        (folder / tool).symlink_to(found)
    (folder / "python3").symlink_to(Path(sys.executable).resolve())
    return str(folder)


def test_make_up_and_run_with_posix_tools_only(cluster, minimal_path):
    env = dict(cluster.env, PATH=minimal_path)
    up = cluster.make("up", f"NODES={NODES}", env=env)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    run = cluster.make("run", "WORKERS=2", "SIZE=2000000", env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Compute time: " in run.stdout and "(correct)" in run.stdout
    assert cluster.queue() == []
