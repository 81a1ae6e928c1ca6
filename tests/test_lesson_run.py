"""`make lesson LESSON=work/<lesson>` on the compose cluster: the project's own
small lessons dry-run as a learner types them. tests/lesson (the ACENET
lesson's Jekyll layout): from module load and pip install to a SLURMCluster
script, a Cython module, a picture and a job too large for any node, which
must fail with its cause named; each file as the page shows it at that step
(code/ holds the last version only). tests/lesson-liquid (HPC Carpentry's
Jekyll + Liquid, with a snippet library) rendered for this cluster, and
tests/lesson-workbench (the Workbench's layout): every step found and run."""

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
    # This cluster serves a wheelhouse, as Alliance sites do: a pip install without --no-index is flagged.
    (pip,) = [s for s in steps["setup"] if s["command"].startswith("pip install")]
    assert pip["why"].startswith("this site serves a wheelhouse (find-links = /opt/wheelhouse in /etc/pip.conf)")
    assert "pip install dask distributed dask_jobqueue \\: note: this site serves a wheelhouse" in done.stdout
    assert cluster.queue() == []


def test_each_file_is_the_one_the_page_shows_at_that_step(reports):
    """code/hello.py is the last version; the page shows the first one whole,
    then an excerpt that changes its print: each run is its own version's."""
    _, _, steps = reports
    runs = [s for s in steps["jobs"] if s["command"] == "srun python hello.py"]
    assert re.fullmatch(r"Hello from compute-\d+", runs[0]["output"][0]), runs[0]
    assert re.fullmatch(r"Hello from compute-\d+ in job \d+", runs[1]["output"][0]), runs[1]
    assert [r["shape"] for r in runs] == ["same shape"] * 2
    edits = [s["why"] for s in steps["jobs"] if s["command"] == "nano hello.py"]
    assert edits == ["as the page shows it (line 7)",
                     "the page's excerpt put into the learner's previous version (line 30)"]


def test_the_learners_terminal_carries_over_and_jobs_run_on_compute_nodes(reports):
    _, _, steps = reports
    jobs = by_command(steps["jobs"])
    # The alias of the episode, the background job watched while it runs (the
    # queue waited for until it shows the page's R), then seff of that job.
    sq = jobs["sq"]
    assert re.fullmatch(r"\s*\d+\s+R\s+python", sq["output"][1]) and sq["shape"] == "same shape", sq
    assert re.fullmatch(r"waited \d+ s for the queue to look like the page's \(R\)", sq["why"])
    seff = "\n".join(jobs["seff 123"]["output"])
    assert f"Job ID: {sq['output'][1].split()[0]}" in seff and "State: COMPLETED" in seff
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


@pytest.fixture(scope="module")
def liquid(cluster):
    """HPC Carpentry's shape: Liquid prompts, commands and snippet outputs,
    dry-run with --snippets (this cluster's library written from the run)."""
    cluster.put_in_work(ROOT / "tests" / "lesson-liquid", "lesson-liquid")
    cluster.out("rm -rf ~/work/snippets")
    before = set(cluster.results.glob("lesson-run-*"))
    done = cluster.sh("lab lesson ~/work/lesson-liquid --snippets ~/work/snippets", timeout=600)
    (out,) = set(cluster.results.glob("lesson-run-*")) - before
    return done, {page.stem: json.loads(page.read_text()) for page in out.glob("*.json")}


def test_a_liquid_lesson_is_rendered_for_this_cluster_and_every_step_runs(cluster, liquid):
    done, steps = liquid
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = [(name, s["command"], s["status"]) for name in ("connecting", "scheduler", "modules")
             for s in steps[name]]
    assert found == [
        ("connecting", "ssh learner@login", "skipped"),  # typed on the laptop
        ("scheduler", "nano example-job.sh", "ok"), ("scheduler", "cat example-job.sh", "ok"),
        ("scheduler", "sbatch example-job.sh", "ok"), ("scheduler", "squeue -u learner", "ok"),
        ("scheduler", "cat slurm-7.out", "ok"), ("scheduler", "sbatch -J named example-job.sh", "skipped"),
        ("modules", "module load python", "ok"), ("modules", "python3 --version", "ok")]  # the lesson's: Python
    scheduler = by_command(steps["scheduler"])
    # The job script the snippet shows, with this cluster's shebang; its output once it ended.
    assert scheduler["cat example-job.sh"]["output"] == [
        "#!/bin/bash", "#SBATCH -J hello-job", "", 'echo -n "This script is running on "', "hostname"]
    assert re.fullmatch(r"This script is running on \S+", scheduler["cat slurm-7.out"]["output"][0])
    status = scheduler["squeue -u learner"]
    assert status["snippet"] == "scheduler/basic-job-status.snip" and status["expected"][1].split()[3] == "yourUser"
    assert cluster.queue() == []


def test_the_snippet_library_written_renders_the_lesson_for_this_cluster(cluster, liquid):
    from lab import lesson

    (library,) = (cluster.workdir / "snippets" / "snippets_library").iterdir()
    snip = (library / "scheduler" / "basic-job-script.snip").read_text()
    assert re.fullmatch(r"```\nSubmitted batch job \d+\n```\n\{: \.output\}\n", snip)
    assert re.search(r"\n\s*\d+\s+debug\s+hello-jo\s+learner\s", (library / "scheduler" / "basic-job-status.snip")
                     .read_text())
    assert (library / "modules" / "python-version.snip").read_text().startswith("```\nPython 3.13.")
    # An instructor's way: the library beside the lesson's, its values in _config.yml.
    import shutil

    import yaml

    shutil.rmtree(cluster.workdir / "lesson-liquid-here", ignore_errors=True)
    copy = shutil.copytree(cluster.workdir / "lesson-liquid", cluster.workdir / "lesson-liquid-here")
    shutil.copytree(library, copy / "_includes" / "snippets_library" / library.name)
    config = yaml.safe_load((copy / "_config.yml").read_text())
    config.update(yaml.safe_load((library / "_config_options.yml").read_text()))
    (copy / "_config.yml").write_text(yaml.safe_dump(config))
    loaded = lesson.load(copy, ["scheduler"])  # no cluster values: the lesson's own config alone
    text, _ = loaded.text(loaded.pages[0])
    found = lesson.steps(text, loaded.prompts)
    assert [s.command for s in found][:3] == ["nano example-job.sh", "cat example-job.sh", "sbatch example-job.sh"]
    assert found[2].expected == snip.splitlines()[1:2]  # the page now shows this cluster's output


def test_a_workbench_lesson_runs_every_step(cluster):
    cluster.put_in_work(ROOT / "tests" / "lesson-workbench", "lesson-workbench")
    before = set(cluster.results.glob("lesson-run-*"))
    done = cluster.make("lesson", "LESSON=work/lesson-workbench", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (out,) = set(cluster.results.glob("lesson-run-*")) - before
    steps = {page.stem: json.loads(page.read_text()) for page in out.glob("*.json")}
    assert [(s["command"], s["status"]) for s in steps["jobs"] + steps["python"]] == [
        ("srun hostname", "ok"), ("srun -n 2 hostname", "skipped"),
        ("nano where.py", "ok"), ("srun python3 where.py > answer.txt", "ok"), ("cat answer.txt", "ok")]
    answer = by_command(steps["python"])["cat answer.txt"]
    assert re.fullmatch(r"running in job \d+", answer["output"][0]) and answer["shape"] == "same shape"
    assert "| jobs | 1 | 0 | 1 | 0 |" in (out / "index.md").read_text()
