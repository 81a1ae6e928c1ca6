"""slurm-dev/node-cores.sh: which host cores each compute node is pinned to."""

from __future__ import annotations

import subprocess

import pytest

from tools.cluster import ROOT


def node_cores(number: int, cpus: int, cores: list[int]) -> str:
    done = subprocess.run([str(ROOT / "slurm-dev" / "node-cores.sh"), str(number), str(cpus), "-"],
                          input="".join(f"{c}\n" for c in cores), capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("number, expected", [(1, "0,1"), (2, "2,3"), (3, "4,5"), (4, "6,7"), (5, "0,1")])
def test_nodes_take_cores_of_their_own_while_the_host_has_them(number, expected):
    assert node_cores(number, 2, list(range(8))) == expected


def test_nodes_share_cores_past_the_hosts_and_never_ask_for_more_than_there_are():
    assert [node_cores(n, 2, [0, 1]) for n in (1, 2, 3, 4)] == ["0,1"] * 4  # this 2-core machine
    assert node_cores(2, 2, [4, 5, 6]) == "6,4"  # the ids this container may use, not 0..n
    assert node_cores(1, 4, [0, 1]) == "0,1"
