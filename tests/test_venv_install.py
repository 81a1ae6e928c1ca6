"""containers/venv_install.py: what the compute nodes' venv leaves out of the lock."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tools.cluster import ROOT

spec = importlib.util.spec_from_file_location("venv_install", ROOT / "containers" / "venv_install.py")
venv_install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(venv_install)
LOCK = (ROOT / "requirements.lock").read_text()
# What the compute nodes' image goes without (compose.yaml's worker image).
WITHOUT = re.search(r"LAB_WITHOUT: (.*)", (ROOT / "compose.yaml").read_text()).group(1).split()


def test_the_nodes_go_without_plotting_and_the_dashboard_and_only_what_those_need():
    kept, dropped = venv_install.without(LOCK, WITHOUT)
    assert WITHOUT == ["matplotlib", "bokeh"]
    assert {"matplotlib", "bokeh", "fonttools", "kiwisolver", "pillow", "contourpy", "narwhals"} <= set(dropped)
    entries = venv_install.lock_entries(kept)
    # What a worker, the lab and its TLS need stays, numpy too (the lab's own need, and the lesson's kernel).
    assert {"dask", "distributed", "dask-jobqueue", "numpy", "cryptography", "tornado", "msgpack",
            "cloudpickle", "setuptools"} <= set(entries)
    # Nothing kept is there only for what was dropped; every kept entry is whole (its hashes too).
    for name, (lines, via) in entries.items():
        assert not via or not via <= set(dropped), name
        assert lines.lower().startswith(name + "==") and "--hash=sha256:" in lines, name
    assert len(entries) + len(dropped) == len(venv_install.lock_entries(LOCK))


def test_dropping_nothing_keeps_the_whole_lock():
    kept, dropped = venv_install.without(LOCK, [])
    assert dropped == [] and kept.split() == LOCK.split("\n", 2)[2].split()


def test_a_name_not_in_the_lock_is_refused():
    with pytest.raises(SystemExit, match="not in the lock: plotly"):
        venv_install.without(LOCK, ["plotly"])
