"""`lab lesson`'s parts without a cluster: the episode parser on tricky
Markdown, what each step becomes, the shape comparison, the causes, and the
runner itself on this machine's bash (aliases, cd, & jobs, a timeout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import lesson
from lab.cli import main
from lab.edits import Files
from lab.errors import BadInput

PAGE = """---
title: tricky
---
Text with `$ not a command` inline.

~~~
$ module load python
$ srun --mem=1G \\
    --cpus-per-task=2 python x.py
~~~
{: .language-bash}

~~~
 JOBID PARTITION
   964 cpubase_b
~~~
{: .output}

```bash
$ echo fenced by backticks
```

~~~
print("python, not shell")
~~~
{: .language-python}

> ## Challenge
> ~~~
> $ echo in the exercise
> ~~~
> {: .language-bash}
>
> > ## Solution
> > ~~~
> > $ echo in the solution
> > ~~~
> > {: .language-bash}
> > ~~~
> > > not a quote: output that starts with >
> > ~~~
> > {: .output}
> {: .solution}
{: .challenge}
"""


def test_blocks_know_their_kind_and_blockquote_depth():
    found = lesson.blocks(PAGE)
    assert [(b.kind, b.depth) for b in found] == [
        ("language-bash", 0), ("output", 0), ("bash", 0), ("language-python", 0),
        ("language-bash", 1), ("language-bash", 2), ("output", 2)]
    # Inside a fence in a `> >` quote only two markers go: the output's own > stays.
    assert found[-1].lines == ["> not a quote: output that starts with >"]
    assert found[1].lines == [" JOBID PARTITION", "   964 cpubase_b"]


def test_steps_are_the_shell_lines_a_learner_types_with_the_pages_output():
    found = lesson.steps(PAGE)
    assert [s.command for s in found] == [
        "module load python", "srun --mem=1G \\\n    --cpus-per-task=2 python x.py", "echo fenced by backticks",
        "echo in the exercise", "echo in the solution"]
    assert found[0].expected is None and found[1].expected == [" JOBID PARTITION", "   964 cpubase_b"]
    assert [s.line for s in found[:3]] == [7, 8, 20]
    assert [s.status for s in found] == ["not run"] * 3 + ["skipped"] * 2
    assert found[4].expected == ["> not a quote: output that starts with >"]


def test_a_block_with_no_attribute_is_shell_by_its_prompts():
    page = "~~~\r\n$ cp hello.py compute.py\r\n$ nano compute.py\r\n~~~\r\n\r\n~~~\r\nimport time\r\n~~~\r\n"
    assert [s.command for s in lesson.steps(page)] == ["cp hello.py compute.py", "nano compute.py"]


def test_the_output_is_compared_by_shape():
    page = ["Compute time: 11.121154069900513s", "    964 cpubase_b python user49  R  0:10"]
    here = ["Compute time: 3.2s", "  12 cpubase_b  python   user49 R 0:01"]
    assert lesson.compare(here, page) == "same shape"
    assert lesson.compare(["Compute time: 3.2s", "Traceback (most recent call last):"], page) == \
        "differs (50% of lines alike)"


@pytest.mark.parametrize("output, says", [
    (["ModuleNotFoundError: No module named 'distutils'"], "pip install setuptools"),
    (["srun: error: Memory specification can not be satisfied"], "more memory or CPUs than any node"),
    (["bash: line 3: module: command not found"], "no `module` command here"),
    (["ERROR: No matching distribution found for mimesis"], "pip cannot find mimesis in this site's wheelhouse"),
    (["ModuleNotFoundError: No module named 'dask_jobqueue'"], "python has no dask_jobqueue: pip install it"),
    (["bash: line 9: feh: command not found"], "no feh command here"),
    (["something else broke"], ""),
])
def test_a_failure_has_its_cause_and_fix(output, says):
    assert says in lesson.cause(output) if says else lesson.cause(output) == ""


def test_a_module_of_the_lessons_own_is_named_as_such():
    said = lesson.cause(["ModuleNotFoundError: No module named 'cysum'"], own=frozenset({"cysum", "hello"}))
    assert said.startswith("cysum is the lesson's own module (in code/), which the page writes or builds only later")
    assert lesson.cause(["feh: mydask.png: no such file"]).startswith("no picture mydask.png: the step that draws it")


@pytest.mark.parametrize("command, content, becomes", [
    # The learner writes the file the page shows (the runner's here-document), not a copy of code/.
    ("nano hello.py", ["print('hi')"], "cat >hello.py <<'lab_lesson_ab_EOF'\nprint('hi')\nlab_lesson_ab_EOF"),
    ("srun python hello.py&", None, "srun python hello.py&"),
    # The page's job ids are this run's: its last job, whose output file is read once it ended.
    ("seff 965", None, 'seff "$(__lab_last_job)"'),
    ("scancel 38759", None, 'scancel "$(__lab_last_job)"'),
    ("sacct -l -j 347087 | less -S", None, 'sacct -l -j "$(__lab_last_job)" | less -S'),
    ("cat slurm-12.out", None, '__lab_job_ended; cat slurm-"$(__lab_last_job)".out'),
])
def test_what_each_step_becomes(command, content, becomes):
    step = lesson.Step(command, 1, content=content)
    assert lesson._prepared(step, "@@lab-lesson-ab@@") == becomes and step.status == "not run"


@pytest.mark.parametrize("command, why", [
    ("nano other.py", "the learner writes other.py; neither the page nor code/ shows it"),
    ("ssh -X me@cluster.example", "the dry run is on the cluster already"),
    ("xclock", "needs a display (ssh -X): look at it by hand"),
    ("srun --pty bash", "an interactive shell on a compute node: the dry run goes on on the login node"),
    ("salloc -n 1", "an interactive shell on a compute node: the dry run goes on on the login node"),
])
def test_what_is_not_run_says_why(command, why):
    step = lesson.Step(command, 1)
    assert lesson._prepared(step, "@@x@@") is None and (step.status, step.why) == ("skipped", why)


def write_lesson(folder: Path, pages: dict[str, str], order: list[str] | None = None) -> Path:
    (folder / "_episodes").mkdir(parents=True)
    (folder / "code").mkdir()
    for name, text in pages.items():
        (folder / "_episodes" / f"{name}.md").write_text(text)
    if order:
        (folder / "_config.yml").write_text("title: x\nepisode_order:\n" + "".join(f"  - {n}\n" for n in order))
    return folder


def play(folder: Path, name: str, home: Path, timeout: float = 60, files: Files | None = None) -> list:
    """One episode of the lesson at folder, played here as `lab lesson` plays it."""
    loaded = lesson.load(folder, None)
    (page,) = [p for p in loaded.pages if p.stem == name]
    found, _ = lesson.episode_steps(loaded, page, files or Files(loaded.code))
    return lesson.run_episode(found, loaded, home, timeout)


def bash(*lines: str, output: str | None = None) -> str:
    text = "~~~\n" + "".join(f"$ {line}\n" for line in lines) + "~~~\n{: .language-bash}\n"
    return text + (f"~~~\n{output}\n~~~\n{{: .output}}\n" if output is not None else "")


def test_episodes_run_in_the_lessons_order_and_unknown_ones_are_bad_input(tmp_path):
    folder = write_lesson(tmp_path / "l", {"b": "", "a": "", "c": ""}, order=["c", "a", "b", "gone"])
    assert [p.stem for p in lesson.load(folder, None).pages] == ["c", "a", "b"]
    assert [p.stem for p in lesson.load(folder, ["b", "c"]).pages] == ["c", "b"]
    with pytest.raises(BadInput, match="no episode d in"):
        lesson.load(folder, ["d"])
    with pytest.raises(BadInput, match="has no _episodes/ folder .a Jekyll lesson. nor episodes/ .a Workbench"):
        lesson.load(tmp_path, None)


def test_the_runner_keeps_the_learners_shell_across_steps(tmp_path):
    page = (bash('alias greet="echo hello"', "greet world", output="hello world")
            + bash("mkdir -p sub && cd sub", "pwd", "nano tally.py", "python3 tally.py", output="7")
            + bash("(sleep 0.3; echo late from the background) &", "echo now", "sleep 0.6", "ls /no/such/folder"))
    folder = write_lesson(tmp_path / "l", {"one": page})
    (folder / "code" / "tally.py").write_text("print(3 + 4)\n")
    home = tmp_path / "home"
    home.mkdir()
    found = play(folder, "one", home)
    by = {s.command: s for s in found}
    assert by["greet world"].output == ["hello world"] and by["greet world"].shape == "same shape"
    assert by["pwd"].output == [f"{home}/sub"]  # cd carried over, in the run's own home
    assert by["python3 tally.py"].output == ["7"] and (home / "sub" / "tally.py").exists()
    # A background job's late line goes with the step running when it came.
    assert by["sleep 0.6"].output == ["late from the background"] and by["echo now"].output == ["now"]
    failed = by["ls /no/such/folder"]
    assert failed.status == "failed" and failed.why == "exit status 2" and "No such file" in failed.output[0]
    assert all(s.status == "ok" for s in found[:-1]) and all(s.seconds is not None for s in found)
    assert by["sleep 0.6"].seconds >= 0.5


def test_a_background_job_that_fails_fails_its_step(tmp_path):
    """`srun --mem=7G python x.py&` returns at once; its job's failure is the step's."""
    folder = write_lesson(tmp_path / "l", {"bg": bash("(sleep 0.2; echo 'No module named distutils'; exit 3)&",
                                                      "sleep 1 &", "sleep 0.5", "wait")})
    found = play(folder, "bg", tmp_path)
    # (The learner's own `wait` reaps the jobs first: their status is still theirs.)
    assert [s.status for s in found] == ["failed", "ok", "ok", "ok"]
    assert found[0].why.startswith("the script imports distutils")
    assert found[2].output == ["No module named distutils"]  # printed while that step ran


def test_the_next_episode_goes_on_in_the_same_terminal(tmp_path):
    """A learner's terminal stays open all day: an alias, an exported variable
    (an active virtualenv), a function and the folder carry to the next episode."""
    folder = write_lesson(tmp_path / "l", {
        "a": bash('alias greet="echo hi"', "export VIRTUAL_ENV=/x/dask", "hello() { echo fn; }", "mkdir -p w && cd w"),
        "b": bash("greet", "echo $VIRTUAL_ENV", "hello", "pwd")}, order=["a", "b"])
    home = tmp_path / "home"
    home.mkdir()
    files = Files([])
    for name in ("a", "b"):
        found = play(folder, name, home, files=files)
    assert [s.output for s in found] == [["hi"], ["/x/dask"], ["fn"], [f"{home}/w"]]


def test_an_episode_that_runs_out_of_time_marks_what_it_did_not_reach(tmp_path):
    folder = write_lesson(tmp_path / "l", {"slow": bash("echo first", "sleep 30", "echo never")})
    found = play(folder, "slow", tmp_path, timeout=2)
    assert [s.status for s in found] == ["ok", "not reached", "not reached"]
    assert found[1].why == "the episode ran out of its 2 s"


def test_lab_lesson_writes_a_report_and_the_output_blocks_per_episode(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me").mkdir()
    folder = write_lesson(tmp_path / "l", {"one": bash("echo 41", output="40") + bash("false")})
    assert main(["lesson", str(folder), "--results", str(tmp_path / "results")]) == 1  # a step failed
    (out,) = (tmp_path / "results").glob("lesson-run-*")
    steps = json.loads((out / "one.json").read_text())
    assert [(s["command"], s["status"], s["shape"]) for s in steps] == [("echo 41", "ok", "same shape"),
                                                                          ("false", "failed", "")]
    assert "| 1 | `echo 41` | ok |" in (out / "one.md").read_text()
    assert (out / "one.outputs.md").read_text() == \
        "~~~\n$ echo 41\n~~~\n{: .language-bash}\n~~~\n41\n~~~\n{: .output}\n"
    assert "| one | 1 | 1 | 0 | 0 |" in (out / "index.md").read_text()
    # The lesson's ~ was a folder of the run's own, in the user's home.
    assert [p.name for p in (tmp_path / "me" / ".lab-lesson").iterdir()] == [out.name]
    printed = capsys.readouterr().out
    assert "2. false: failed: exit status 1" in printed and f"lesson: reports in {out}" in printed


def test_a_folder_that_is_no_lesson_is_one_line(tmp_path, capsys):
    assert main(["lesson", str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no _episodes/ folder" in err and not (tmp_path / "r").exists()


def test_through_the_image_the_steps_run_in_the_learners_own_shell(tmp_path):
    """bin/lab-apptainer lab lesson: lab in the image writes each episode's
    script (--prepare), the learner's own shell outside runs it (where a
    site's module and virtualenv are), lab in the image reads it (--finish).
    A stand-in apptainer runs lab with IN_IMAGE=1, which the steps must not see."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "apptainer").write_text(
        '#!/bin/sh\n# apptainer exec [--bind B] IMAGE COMMAND...\n'
        f'echo "$*" >>{tmp_path}/calls\nshift\n[ "$1" = --bind ] && shift 2\nshift\nIN_IMAGE=1 exec "$@"\n')
    (bindir / "apptainer").chmod(0o755)
    (tmp_path / "lab.sif").write_bytes(b"SIF")
    (tmp_path / "me").mkdir()
    folder = write_lesson(tmp_path / "l", {"a": bash('alias where="echo in the image: ${IN_IMAGE:-no}"'),
                                           "b": bash("where", output="in the image: no")}, order=["a", "b"])
    env = {"PATH": f"{bindir}:{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path / "me"),
           "LAB_SIF": str(tmp_path / "lab.sif"), "TMPDIR": str(tmp_path)}
    done = subprocess.run([root / "bin" / "lab-apptainer", "lab", "lesson", str(folder), "--results",
                           str(tmp_path / "results")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (out,) = (tmp_path / "results").glob("lesson-run-*")
    (step,) = json.loads((out / "b.json").read_text())
    assert step["output"] == ["in the image: no"] and step["shape"] == "same shape"
    # (besides the image's passwd and group, which the wrapper reads once per image)
    calls = [c for c in (tmp_path / "calls").read_text().splitlines() if " cat /etc/" not in c]
    assert len(calls) == 2 and "lab lesson --prepare" in calls[0] and "lab lesson --finish" in calls[1]
    assert not [p for p in tmp_path.glob("lab-lesson.*")]  # the steps' folder is gone
    assert os.path.isdir(tmp_path / "me" / ".lab-lesson" / out.name)


def python_block(*lines: str, link: str = "") -> str:
    return "~~~\n" + "".join(f"{line}\n" for line in lines) + "~~~\n{: .language-python}\n" + \
        (f"[{link}](https://example.org/lesson/code/{link})\n" if link else "")


def test_the_learner_runs_the_file_the_page_shows_at_that_step_not_codes_last_version(tmp_path):
    """code/ holds each file's last version; the page shows the first one
    whole, then an excerpt (`...`), then a version named by a gitfile link
    with no editor line, then an unnamed excerpt of the file being edited."""
    page = (bash("nano greet.py") + python_block("def main():", "  print('one')", "", "main()")
            + bash("python3 greet.py", output="one")
            + bash("cp greet.py greet2.py", "nano greet2.py") + python_block("...", "def main():", "  print('two')",
                                                                            "...")
            + bash("python3 greet2.py", output="two")
            + python_block("def main():", "  print('three')", "", "main()", link="greet2.py")
            + bash("python3 greet2.py", output="three")
            + "Text between.\n\n" + python_block("...", "def main():", "  print('four')", "...")
            + bash("python3 greet2.py", output="four")
            + python_block("def main():", "  print('four')", "", "main()", link="greet2.py") + "\n"
            + python_block("x=0.5", "...", "cdef int test(float x):", "  ..."))  # an aside, no file's
    folder = write_lesson(tmp_path / "l", {"one": page})
    (folder / "code" / "greet.py").write_text("print('the last version')\n")
    (folder / "code" / "greet2.py").write_text("print('the last version')\n")
    found = play(folder, "one", tmp_path)
    ran = [s for s in found if s.command.startswith("python3")]
    assert [s.output for s in ran] == [["one"], ["two"], ["three"], ["four"]]
    assert all(s.shape == "same shape" for s in ran)
    edits = [(s.command, s.status, s.why) for s in found if s.command.startswith("nano")]
    assert edits == [
        ("nano greet.py", "ok", "as the page shows it (line 2)"),
        ("nano greet2.py", "ok", "the page's excerpt put into the learner's previous version (line 22)"),
        ("nano greet2.py", "ok", "the page edits greet2.py here (line 40), with no editor line"),
        ("nano greet2.py", "ok", "the page edits greet2.py here (line 58), with no editor line"),
        ("nano greet2.py", "skipped", "the page shows greet2.py again, as the learner has it")]
    assert len(found) == 10  # the aside after them all is no edit


def test_a_file_shown_by_cat_after_the_editor_is_the_file(tmp_path):
    page = bash("nano job.sh", "cat job.sh") + "~~~\n#!/bin/bash\necho from the job\n~~~\n{: .language-bash}\n" \
        + bash("bash job.sh", output="from the job")
    folder = write_lesson(tmp_path / "l", {"one": page})
    found = play(folder, "one", tmp_path)
    assert [(s.command, s.status, s.output) for s in found] == [
        ("nano job.sh", "ok", []), ("cat job.sh", "ok", ["#!/bin/bash", "echo from the job"]),
        ("bash job.sh", "ok", ["from the job"])]
    assert found[1].shape == "same shape"


WORKBENCH = """---
title: Jobs
---

:::::::::::::::::::::::::::::::::::::: objectives
- run a job
::::::::::::::::::::::::::::::::::::::::::::::::

```bash
nano hello.py
```

```python
print("hello")
```

```bash
python3 hello.py
echo done  # a comment stays with its line
```

```output
done
```

::::::::::::::::::::::::::::::::::::: challenge
## Twice

```bash
$ python3 hello.py; python3 hello.py
```

:::::::::::::::::::::::: solution
```output
hello
hello
```
::::::::::::::::::::::::
:::::::::::::::::::::::::::::::::::::::::::::::
"""


def test_a_workbench_lesson_is_read_in_its_own_layout(tmp_path):
    folder = tmp_path / "wb"
    (folder / "episodes").mkdir(parents=True)
    (folder / "episodes" / "jobs.md").write_text(WORKBENCH)
    (folder / "episodes" / "extra.md").write_text("---\ntitle: x\n---\n")
    (folder / "config.yaml").write_text("title: wb\nepisodes:\n- jobs.md\n- extra.md\n")
    loaded = lesson.load(folder, None)
    assert (loaded.layout, [p.stem for p in loaded.pages]) == ("workbench", ["jobs", "extra"])
    page = lesson.blocks(WORKBENCH)
    assert [(b.kind, b.depth) for b in page] == [("bash", 0), ("python", 0), ("bash", 0), ("output", 0),
                                                 ("bash", 1), ("output", 2)]
    found = play(folder, "jobs", tmp_path)
    assert [(s.command, s.status) for s in found] == [
        ("nano hello.py", "ok"), ("python3 hello.py", "ok"), ("echo done  # a comment stays with its line", "ok"),
        ("python3 hello.py; python3 hello.py", "skipped")]
    assert found[1].output == ["hello"] and found[2].output == ["done"] and found[2].shape == "same shape"


HPC_CONFIG = """snippets: "/snippets_library/Far_Away_slurm"
local:
  prompt: "[you@laptop:~]$"
remote:
  host: "login1"
  user: "yourUsername"
  prompt: "[yourUsername@login1 ~]$"
  module_python3: "Python"
sched:
  submit: {name: "sbatch", options: ""}
  status: "squeue"
  flag: {user: "-u yourUsername"}
episode_order:
  - scheduler
"""

HPC_PAGE = """---
title: Scheduler
---
```
{{ site.local.prompt }} ssh {{ site.remote.user }}@{{ site.remote.host }}
```
{: .language-bash}

```
{{ site.remote.prompt }} echo {{ site.sched.status }} {{ site.sched.flag.user }} {{ site.remote.module_python3 }}
```
{: .language-bash}

{% include {{ site.snippets }}/scheduler/status.snip %}
"""


def hpc_lesson(folder: Path) -> Path:
    (folder / "_episodes").mkdir(parents=True)
    (folder / "_config.yml").write_text(HPC_CONFIG)
    (folder / "_episodes" / "scheduler.md").write_text(HPC_PAGE)
    snip = folder / "_includes" / "snippets_library" / "Far_Away_slurm" / "scheduler"
    snip.mkdir(parents=True)
    (snip / "status.snip").write_text("```\nsqueue -u yourUsername Python\n```\n{: .output}\n")
    return folder


def test_a_liquid_lesson_is_rendered_with_this_clusters_values(tmp_path):
    """HPC Carpentry's way: prompts, commands and outputs are Liquid; this
    cluster's values (its user, its module) win over the lesson's."""
    ours = {"snippets_name": "here_slurm", "remote": {"user": "learner", "prompt": "[learner@login ~]$",
                                                       "module_python3": "python"},
            "sched": {"flag": {"user": "-u learner"}}}
    folder = hpc_lesson(tmp_path / "hpc")
    loaded = lesson.load(folder, None, lambda: ours)
    assert loaded.prompts == lesson.Prompts(("$", "[learner@login ~]$"), ("[you@laptop:~]$",))
    found, empty = lesson.episode_steps(loaded, loaded.pages[0], Files(loaded.code))
    assert empty == "" and [(s.command, s.status) for s in found] == [
        ("ssh learner@login1", "skipped"), ("echo squeue -u learner python", "not run")]
    assert found[0].why == "typed on the learner's own computer, not the cluster"
    assert found[1].expected == ["squeue -u yourUsername Python"] and found[1].snippet == "scheduler/status.snip"
    # Without its _config.yml nothing is rendered: no step found, and why.
    (folder / "_config.yml").unlink()
    text, rendered = lesson.load(folder, None).text(loaded.pages[0])
    assert rendered is not None and lesson.steps(text, loaded.prompts) == []
    assert lesson.no_steps(text, rendered, lesson.Prompts()).startswith("no step found: ")


def test_an_episode_with_code_but_no_step_fails_with_its_cause(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me").mkdir()
    folder = write_lesson(tmp_path / "l", {
        "prompts": "~~~\n% ls -l\n~~~\n{: .language-bash}\n",  # a prompt lab does not know
        "python": python_block("print(1)"),
        "break": "---\ntitle: Break\n---\nCoffee.\n", "fine": bash("true")},
        order=["prompts", "python", "break", "fine"])
    assert main(["lesson", str(folder), "--results", str(tmp_path / "r")]) == 1
    printed = capsys.readouterr().out
    assert "prompts: failed: no step found: 1 shell block(s), but no line starts with a prompt lab knows ($)" \
        in printed
    assert "python: failed: no step found: 1 code block(s), none of them shell (language-python)" in printed
    assert "break: failed" not in printed and "| break | 0 | 0 | 0 | 0 | 0 | no code on this page |" in printed
    assert "| fine | 1 | 0 | 0 | 0 |" in printed and "no step found in any episode" not in printed
    # A lesson where nothing at all was found fails as a whole too.
    folder = write_lesson(tmp_path / "none", {"break": "Coffee.\n"})
    assert main(["lesson", str(folder), "--results", str(tmp_path / "r")]) == 1
    assert f"lesson: no step found in any episode of {folder}: nothing ran" in capsys.readouterr().out


def test_a_lesson_where_every_page_has_steps_but_no_code_page_is_green(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me").mkdir()
    folder = write_lesson(tmp_path / "l", {"a": bash("true"), "break": "Coffee.\n"}, order=["a", "break"])
    assert main(["lesson", str(folder), "--results", str(tmp_path / "r")]) == 0


def table(*states: str) -> str:
    return "JOBID NAME ST\n" + "".join(f"{n} job {state}\n" for n, state in enumerate(states, 1))


@pytest.mark.parametrize("later, wait, says", [
    (table("PD", "R"), 20, r"waited [12] s for the queue to look like the page's \(PD R\)"),
    (table("R", "R"), 2, r"the queue never looked like the page's \(PD R\) in 2 s: the last one is shown"),
])
def test_a_queue_the_page_shows_while_jobs_run_is_waited_for(tmp_path, monkeypatch, later, wait, says):
    """`srun ... &` then `sqcm`: the page shows the worker pending; the step
    plays the view again until its states are the page's, or says they never were."""
    import re

    monkeypatch.setattr(lesson, "QUEUE_WAIT", wait)
    (tmp_path / "queue.txt").write_text(table("R"))
    later_file = tmp_path / "later.txt"
    later_file.write_text(later)
    page = bash(f"(sleep 1; cp {later_file} {tmp_path}/queue.txt; sleep 4) &", f"cat {tmp_path}/queue.txt",
                output=table("PD", "R").rstrip())
    folder = write_lesson(tmp_path / "l", {"q": page})
    found = play(folder, "q", tmp_path)
    assert re.fullmatch(says, found[1].why), found[1].why
    assert found[1].output == later.rstrip().splitlines()


def test_the_snippet_library_is_written_from_the_run(tmp_path):
    from lab.snippets import write_library

    ran = lesson.Step("squeue -u learner", 1, status="ok", output=["JOBID USER", "7 learner"],
                      snippet="scheduler/status.snip")
    skipped = lesson.Step("ssh x", 2, status="skipped", snippet="connecting/ssh.snip")
    site = {"snippets_name": "here_slurm", "remote": {"prompt": "[learner@login ~]$"}, "episode_order": ["a"]}
    library = write_library(tmp_path, site, [ran, skipped])
    assert library == tmp_path / "snippets_library" / "here_slurm"
    assert (library / "scheduler" / "status.snip").read_text() == "```\nJOBID USER\n7 learner\n```\n{: .output}\n"
    assert not (library / "connecting").exists()
    import yaml

    options = yaml.safe_load((library / "_config_options.yml").read_text())
    assert options == {"snippets": "/snippets_library/here_slurm", "remote": {"prompt": "[learner@login ~]$"}}


def test_a_longer_closing_fence_and_a_nested_output_block():
    page = "````\n$ echo one\n~~~\nnot the end\n`````\n{: .language-bash}\n> > ~~~\n> > two\n> > ~~~\n> > {: .output}\n"
    found = lesson.blocks(page)
    assert [(b.kind, b.lines, b.depth) for b in found] == [
        ("language-bash", ["$ echo one", "~~~", "not the end"], 0), ("output", ["two"], 2)]


def test_a_pip_install_without_no_index_is_flagged_at_a_wheelhouse_site(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /cvmfs/wheels\n")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setattr(lesson, "PIP_CONFIGS", ())
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "none.conf"))
    assert lesson.wheelhouse() == ""  # no wheelhouse: nothing flagged
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    where = lesson.wheelhouse()
    assert where == f"find-links = /cvmfs/wheels in {conf}"
    found = [lesson.Step(c, n) for n, c in enumerate(["pip install numpy", "pip install --no-index numpy",
                                                      "python3 -m pip install dask", "echo pip install x",
                                                      "cd x && pip3 install ."])]
    lesson.flag_pip(found, where)
    assert [bool(s.why) for s in found] == [True, False, True, False, True]
    assert found[0].why.startswith(f"this site serves a wheelhouse ({where}): its way is pip install --no-index")
