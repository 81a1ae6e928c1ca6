"""`lab lesson`'s parts without a cluster: the episode parser on tricky
Markdown, what each step becomes, the shape comparison, the causes, and the
runner itself on this machine's bash (aliases, cd, & jobs, a timeout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import lesson
from lab.cli import main
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


def test_what_each_step_becomes(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "hello.py").write_text("print('hi')\n")

    def prepared(command: str):
        step = lesson.Step(command, 1)
        return lesson._prepared(step, tmp_path), step.status, step.why

    assert prepared("nano hello.py")[0] == f"cp {tmp_path}/code/hello.py hello.py"
    assert prepared("nano other.py")[1:] == \
        ("skipped", "the learner writes other.py; the lesson's code/ has no such file")
    assert prepared("ssh -X me@cluster.example")[1:] == ("skipped", "the dry run is on the cluster already")
    assert prepared("xclock")[1] == "skipped" and "display" in prepared("xclock")[2]
    assert prepared("seff 965")[0] == 'seff "$(sacct -n -X -P -o jobid | tail -n 1)"'  # this run's job, not the page's
    assert prepared("srun python hello.py&")[0] == "srun python hello.py&"


def write_lesson(folder: Path, pages: dict[str, str], order: list[str] | None = None) -> Path:
    (folder / "_episodes").mkdir(parents=True)
    (folder / "code").mkdir()
    for name, text in pages.items():
        (folder / "_episodes" / f"{name}.md").write_text(text)
    if order:
        (folder / "_config.yml").write_text("title: x\nepisode_order:\n" + "".join(f"  - {n}\n" for n in order))
    return folder


def bash(*lines: str, output: str | None = None) -> str:
    text = "~~~\n" + "".join(f"$ {line}\n" for line in lines) + "~~~\n{: .language-bash}\n"
    return text + (f"~~~\n{output}\n~~~\n{{: .output}}\n" if output is not None else "")


def test_episodes_run_in_the_lessons_order_and_unknown_ones_are_bad_input(tmp_path):
    folder = write_lesson(tmp_path / "l", {"b": "", "a": "", "c": ""}, order=["c", "a", "b", "gone"])
    assert [p.stem for p in lesson.order(folder, None)] == ["c", "a", "b"]
    assert [p.stem for p in lesson.order(folder, ["b", "c"])] == ["c", "b"]
    with pytest.raises(BadInput, match="no episode d in"):
        lesson.order(folder, ["d"])
    with pytest.raises(BadInput, match="has no _episodes/ folder"):
        lesson.order(tmp_path, None)


def test_the_runner_keeps_the_learners_shell_across_steps(tmp_path):
    page = (bash('alias greet="echo hello"', "greet world", output="hello world")
            + bash("mkdir -p sub && cd sub", "pwd", "nano tally.py", "python3 tally.py", output="7")
            + bash("(sleep 0.3; echo late from the background) &", "echo now", "sleep 0.6", "ls /no/such/folder"))
    folder = write_lesson(tmp_path / "l", {"one": page})
    (folder / "code" / "tally.py").write_text("print(3 + 4)\n")
    home = tmp_path / "home"
    home.mkdir()
    found = lesson.run_episode(folder / "_episodes" / "one.md", folder, home, timeout=60)
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
    found = lesson.run_episode(folder / "_episodes" / "bg.md", folder, tmp_path, timeout=60)
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
    for page in lesson.order(folder, None):
        found = lesson.run_episode(page, folder, home, timeout=60)
    assert [s.output for s in found] == [["hi"], ["/x/dask"], ["fn"], [f"{home}/w"]]


def test_an_episode_that_runs_out_of_time_marks_what_it_did_not_reach(tmp_path):
    folder = write_lesson(tmp_path / "l", {"slow": bash("echo first", "sleep 30", "echo never")})
    found = lesson.run_episode(folder / "_episodes" / "slow.md", folder, tmp_path, timeout=2)
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
