"""`make lesson LESSON=work/<lesson>` on the compose cluster: the project's own
small lesson (tests/lesson, the Carpentries layout) dry-run as a learner types
it, from module load and pip install to a SLURMCluster script, a Cython
module, a picture and a job too large for any node, which must fail with its
cause named."""

from __future__ import annotations

import json
import re

import pytest

from tools.cluster import ROOT

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def reports(cluster):
    cluster.put_in_work(ROOT / "tests" / "lesson", "lesson")
    before = set(cluster.results.glob("lesson-run-*"))
    done = cluster.make("lesson", "LESSON=work/lesson", timeout=1800)
    (out,) = set(cluster.results.glob("lesson-run-*")) - before
    steps = {page.stem: json.loads(page.read_text()) for page in out.glob("*.json")}
    return done, out, steps


def by_command(steps: list[dict]) -> dict[str, dict]:
    return {step["command"]: step for step in steps}


def test_every_episode_runs_and_only_the_oversized_job_fails(cluster, reports):
    done, out, steps = reports
    assert done.returncode != 0  # a step failed, as the lesson's last episode means it to
    assert f"lesson: reports in /home/learner/results/{out.name}" in done.stdout, done.stdout + done.stderr
    assert sorted(steps) == ["cython", "distributed", "jobs", "limits", "pictures", "setup"]
    failed = [(name, s["command"]) for name, page in steps.items() for s in page if s["status"] != "ok"
              and s["why"] != "in an exercise or its solution"]
    assert failed == [("limits", "srun --mem=64G python hello.py")], json.dumps(steps, indent=1)[-3000:]
    (limit,) = steps["limits"]
    assert "more memory or CPUs than any node" in limit["why"]
    assert "srun --mem=64G python hello.py: failed: asks for more memory" in done.stdout
    index = (out / "index.md").read_text()
    assert "| setup | 4 | 0 | 0 | 0 |" in index and "| limits | 0 | 1 | 0 | 0 |" in index
    assert cluster.queue() == []


def test_the_learners_terminal_carries_over_and_jobs_run_on_compute_nodes(reports):
    _, _, steps = reports
    jobs = by_command(steps["jobs"])
    assert re.fullmatch(r"Hello from compute-\d+", jobs["srun python hello.py"]["output"][0])
    assert jobs["srun python hello.py"]["shape"] == "same shape"
    # The alias of the episode, the background job watched while it runs, then seff of that job.
    assert re.fullmatch(r"\d+ RUNNING", jobs["sq"]["output"][0]) and jobs["sq"]["shape"] == "same shape"
    seff = "\n".join(jobs["seff 123"]["output"])
    assert f"Job ID: {jobs['sq']['output'][0].split()[0]}" in seff and "State: COMPLETED" in seff
    assert jobs["srun --cpus-per-task=2 python sleepy.py"]["status"] == "skipped"  # in the exercise
    # The virtualenv of the setup episode is still active in the Cython one, on the compute node too.
    tally = by_command(steps["cython"])["srun python use_tally.py"]
    assert tally["output"] == ["499999500000"] and tally["shape"] == "same shape"
    script = "\n".join(by_command(steps["distributed"])["srun python compute-distributed.py"]["output"])
    assert re.search(r"/home/learner/\.lab-lesson/lesson-run-[\w-]+/dask/bin/python -m distributed", script)
    assert re.search(r"Compute time: \d+\.\d+s", script)


def test_the_picture_reaches_the_laptop_and_the_pages_blocks_are_regenerated(cluster, reports):
    _, out, steps = reports
    shown = by_command(steps["pictures"])["feh graph.png"]["output"]
    assert shown == [f"feh: no display on this cluster; open {cluster.workdir}/pictures/graph.png on your computer"]
    assert (cluster.workdir / "pictures" / "graph.png").read_bytes()[:4] == b"\x89PNG"
    regenerated = (out / "cython.outputs.md").read_text()
    assert regenerated == ("~~~\n$ srun python use_tally.py\n~~~\n{: .language-bash}\n"
                           "~~~\n499999500000\n~~~\n{: .output}\n")
    report = (out / "jobs.md").read_text()
    assert "| 1 | `nano hello.py` | ok |" in report and "The page:" in report
