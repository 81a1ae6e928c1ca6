"""The cluster is the lesson's site: the set-up an Alliance site's learner types
(module load python, virtualenv --no-download, pip install from the site's
wheelhouse with no internet), then that virtualenv on the compute nodes:
srun, a Cython module built on the login node, a task graph's picture
(graphviz's dot), and SLURMCluster's workers started with its python."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

from tools.cluster import ROOT

pytestmark = pytest.mark.cluster

# The lesson's own pip lines (its delayed and cython episodes).
PIP_LINES = ["pip install pandas numpy dask distributed graphviz bokeh dask_jobqueue mimesis requests matplotlib",
             "pip install cython"]
# A Cython module and the build script of the lesson's shape (distutils' setup).
PYX = """def total(long n):
    cdef long i, s = 0
    for i in range(n):
        s += i
    return s
"""
BUILD = """from distutils.core import setup
from Cython.Build import cythonize

setup(ext_modules=cythonize("tally.pyx"))
"""


@pytest.fixture(scope="module")
def venv(cluster):
    """The lesson's set-up, typed as the learner types it, in a folder of its own."""
    cluster.out("rm -rf ~/lesson-site && mkdir ~/lesson-site")
    done = cluster.sh("cd ~/lesson-site && module load python && python --version && which virtualenv"
                      " && virtualenv --no-download dask && source dask/bin/activate && "
                      + " && ".join(PIP_LINES), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def lesson(cluster, command: str, **kw):
    """A command in the lesson's folder with its virtualenv active (as after `source ~/dask/bin/activate`)."""
    return cluster.sh(f"cd ~/lesson-site && source dask/bin/activate && {command}", **kw)


def test_module_load_python_and_pip_from_the_sites_wheelhouse(cluster, venv):
    assert "python/3.13" in cluster.sh("module -t avail 2>&1").stdout
    assert re.search(r"^Python 3\.13\.\d+$", venv, re.M)
    # pip looked in the site's wheelhouse, never on the internet.
    assert venv.count("Looking in links: /opt/wheelhouse") == 2 and "Successfully installed" in venv
    missing = lesson(cluster, "pip install a-package-no-wheelhouse-has")
    assert missing.returncode != 0 and "No matching distribution found" in missing.stderr


def test_the_virtualenv_runs_on_the_compute_nodes_with_the_labs_dask(cluster, venv):
    done = lesson(cluster, "srun --cpus-per-task=2 python -c "
                           "'import dask, mimesis, pandas, sys; print(sys.executable, dask.__version__)'")
    assert done.returncode == 0, done.stdout + done.stderr
    # The learner's dask is the lab's version (the lesson's lock is constrained by the lab's).
    assert done.stdout.split() == ["/home/learner/lesson-site/dask/bin/python", version("dask")]


def test_a_cython_module_built_on_the_login_node_runs_on_a_compute_node(cluster, venv):
    cluster.out(f"cd ~/lesson-site && cat > tally.pyx <<'EOF'\n{PYX}EOF\ncat > build_tally.py <<'EOF'\n{BUILD}EOF")
    built = lesson(cluster, "python build_tally.py build_ext --inplace")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    done = lesson(cluster, "srun python -c 'import tally; print(tally.total(1000000))'")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == str(1000000 * 999999 // 2)


def test_a_task_graphs_picture_is_drawn_on_a_compute_node(cluster, venv):
    done = lesson(cluster, "rm -f graph.png && srun python -c "
                           "'import dask; dask.delayed(sum)([1, 2]).visualize(\"graph.png\")'"
                           " && head -c 4 graph.png | od -An -c")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["211", "P", "N", "G"]
    # feh graph.png, as the lesson says: no display here, so the picture goes
    # to the laptop's folder, and one line says where.
    shown = lesson(cluster, "feh graph.png")
    assert shown.returncode == 0 and shown.stdout.count("\n") == 1, shown.stdout + shown.stderr
    assert f"open {cluster.workdir}/pictures/graph.png on your computer" in shown.stdout
    assert (cluster.workdir / "pictures" / "graph.png").read_bytes()[:4] == b"\x89PNG"


def test_slurmcluster_from_the_virtualenv_starts_workers_with_its_python(cluster, venv):
    script = (ROOT / "tests" / "lesson" / "code" / "compute-distributed.py").read_text()
    cluster.out(f"cat > ~/lesson-site/compute-distributed.py <<'EOF'\n{script}\nEOF")
    done = lesson(cluster, "srun python compute-distributed.py", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "/home/learner/lesson-site/dask/bin/python -m distributed.cli.dask_worker" in done.stdout
    assert re.search(r"Compute time: \d+\.\d+s", done.stdout)
    assert cluster.queue() == []
