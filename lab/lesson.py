"""`lab lesson PATH`: an instructor's dry run of a lesson in the Carpentries
layout (`_episodes/*.md`, `code/`), on the cluster it runs on.

Each episode's shell lines (`$ ...` in its `.language-bash` blocks on the page,
not in its exercises) run in order, as in a learner's terminal that stays open
all day: aliases, `cd`, variables (an active virtualenv) and functions carry
over, within an episode and to the next; `&` jobs run on. A file the learner
writes with an editor (`nano hello.py`) comes from the lesson's `code/`. Each
step is timed; its output is set beside the page's output block, compared by
shape (numbers, job ids and times masked); a failure gets its cause and fix in
one line. Per episode: a report (Markdown and JSON) and the page's output
blocks as this cluster prints them, in results/lesson-run-<id>/.

The run has a home of its own (HOME is a fresh folder in the real home, which
the compute nodes share), so the lesson's `~/dask` never touches the user's.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import BadInput
from .results import new_run_dir, write_atomic

FENCE = re.compile(r"^(~{3,}|`{3,})\s*([\w-]*)\s*$")
ATTRIBUTE = re.compile(r"^\{:\s*\.([\w-]+)\s*\}$")
SHELL = {"language-bash", "bash", "language-shell", "shell", "sh"}
EDITORS = {"nano", "vim", "vi", "emacs"}
# Where an episode's shell leaves its state for the next (in the run's own home).
STATE = '"$HOME/.lab-lesson-state"'
# Steps that need what a dry run has not: (pattern on the command, why).
NOT_RUN = [(re.compile(r"^ssh\b"), "the dry run is on the cluster already"),
           (re.compile(r"^(xclock|xeyes|display|eog)\b"), "needs a display (ssh -X): look at it by hand"),
           (re.compile(r"^exit\b"), "would end the episode's shell")]
# A python that cannot import a module (the lesson's own, or a package).
MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
# A failed step's cause and fix, from its output: (pattern, one line).
CAUSES = [
    (re.compile(r"No module named '?distutils"),
     "the script imports distutils, which Python 3.12+ has only through setuptools: "
     "pip install setuptools in the virtualenv (or import setuptools before distutils)"),
    (re.compile(r"Memory specification can not be satisfied|Requested node configuration is not available"),
     "asks for more memory or CPUs than any node has: a bigger node (make up NODE_MEMORY=... NODE_CPUS=..., "
     "which make up prints for the lesson), or a smaller --mem/--cpus-per-task"),
    (re.compile(r"module: command not found"),
     "no `module` command here: this site has no Lmod or Environment Modules"),
    (re.compile(r"No matching distribution found for ([\w.-]+)"),
     "pip cannot find {0} in this site's wheelhouse (no internet here): add it to the lesson's packages "
     "(containers/lesson-requirements.in, make lock) or to the site's wheelhouse"),
    (MISSING_MODULE,
     "python has no {0}: pip install it in the virtualenv, and activate that virtualenv first "
     "(source ~/dask/bin/activate)"),
    (re.compile(r"dot.*not found|ExecutableNotFound|failed to execute.*dot"),
     "no graphviz `dot` here: .visualize() needs the graphviz program, not only the Python package"),
    (re.compile(r"^feh: (\S+): no such file", re.M),
     "no picture {0}: the step that draws it (.visualize()) did not run, or code/'s version of its script draws none"),
    (re.compile(r"^bash: line \d+: (\S+): command not found", re.M), "no {0} command here"),
]


@dataclass
class Block:
    """A fenced block of the page: its kind (language-bash, output, ...), its
    lines, its blockquote depth (0 on the page, 1 in an exercise, 2 in its
    solution) and its first line in the file."""
    kind: str
    lines: list[str]
    depth: int
    line: int


@dataclass
class Step:
    command: str
    line: int
    expected: list[str] | None = None
    status: str = "not run"       # ok, failed, skipped, not reached
    why: str = ""                 # a skip's reason, a failure's cause and fix
    seconds: float | None = None
    output: list[str] = field(default_factory=list)
    shape: str = ""               # the output beside the page's: same shape, or how alike


def _unquote(line: str, limit: int = 99) -> tuple[int, str]:
    """A line without its blockquote markers (`> > text`): their count and the text."""
    depth = 0
    while depth < limit:
        match = re.match(r"^ {0,3}> ?", line)
        if not match:
            break
        line, depth = line[match.end():], depth + 1
    return depth, line


def blocks(text: str) -> list[Block]:
    """Every fenced block (~~~ or ```) of a page, in blockquotes too, with the
    kind its kramdown attribute line ({: .output}) or its info string gives."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        depth, content = _unquote(lines[i])
        opening = FENCE.match(content.strip())
        if not opening:
            i += 1
            continue
        fence, body, j = opening.group(1), [], i + 1
        while j < len(lines):
            closing = FENCE.match(_unquote(lines[j], depth)[1].strip())
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not closing.group(2):
                break
            body.append(_unquote(lines[j], depth)[1])
            j += 1
        kind = opening.group(2)
        if j + 1 < len(lines) and (attribute := ATTRIBUTE.match(_unquote(lines[j + 1])[1].strip())):
            kind, j = attribute.group(1), j + 1
        found.append(Block(kind, body, depth, i + 1))
        i = j + 1
    return found


def steps(text: str) -> list[Step]:
    """The shell lines a learner types, in order ($ lines of shell blocks;
    a line ending in \\ goes on), each with the page's output block after it;
    those in exercises are listed as skipped."""
    found: list[Step] = []
    page = blocks(text)
    for index, block in enumerate(page):
        # A shell block, by its attribute, or by its $ prompts where the page gives none.
        if block.kind not in SHELL and not (block.kind == "" and any(x.startswith("$ ") for x in block.lines)):
            continue
        commands: list[Step] = []
        pending = ""
        for offset, raw in enumerate(block.lines):
            line = raw.rstrip()
            if pending:
                pending += "\n" + line
            elif line.startswith("$ ") or line == "$":
                pending, start = line[2:], block.line + 1 + offset
            else:
                continue  # output shown inside the command block
            if pending.endswith("\\"):
                continue
            if pending.strip():
                commands.append(Step(pending.strip(), start))
            pending = ""
        following = page[index + 1] if index + 1 < len(page) else None
        if commands and following and following.kind == "output" and following.depth == block.depth:
            commands[-1].expected = following.lines
        if block.depth:
            for step in commands:
                step.status, step.why = "skipped", "in an exercise or its solution"
        found += commands
    return found


def order(lesson: Path, chosen: list[str] | None) -> list[Path]:
    """The episodes to run, in the lesson's order (_config.yml's episode_order, else by name)."""
    folder = lesson / "_episodes"
    if not folder.is_dir():
        raise BadInput(f"{lesson} has no _episodes/ folder: give a lesson in the Carpentries layout")
    pages = {page.stem: page for page in folder.glob("*.md")}
    names = sorted(pages)
    config = lesson / "_config.yml"
    if config.exists():
        import yaml

        listed = (yaml.safe_load(config.read_text()) or {}).get("episode_order") or []
        names = [name for name in listed if name in pages] or names
    if chosen:
        unknown = [name for name in chosen if name not in pages]
        if unknown:
            raise BadInput(f"no episode {', '.join(unknown)} in {folder} (there: {', '.join(sorted(pages))})")
        names = [name for name in names if name in chosen]
    return [pages[name] for name in names]


def shape(lines: list[str]) -> list[str]:
    """Output lines with what changes run to run masked: numbers (ids, times), spacing."""
    masked = (re.sub(r"\d+(\.\d+)?", "#", " ".join(line.split())) for line in lines)
    return [line for line in masked if line]


def compare(here: list[str], page: list[str]) -> str:
    mine, theirs = shape(here), shape(page)
    if mine == theirs:
        return "same shape"
    alike = difflib.SequenceMatcher(None, mine, theirs).ratio()
    return f"differs ({alike:.0%} of lines alike)"


def cause(output: list[str], own: frozenset[str] = frozenset()) -> str:
    """The failure's cause and fix; `own`: the modules of the lesson's code/."""
    text = "\n".join(output)
    missing = MISSING_MODULE.search(text)
    if missing and missing.group(1) in own:
        return (f"{missing.group(1)} is the lesson's own module (in code/), which the page writes or builds only "
                "later: code/ holds each file's last version, so this step ran a script of a later step")
    for pattern, advice in CAUSES:
        if match := pattern.search(text):
            return advice.format(*match.groups())
    return ""


def _prepared(step: Step, lesson: Path) -> str | None:
    """The bash line that plays the step, or None when it is not run (its status says why)."""
    words = step.command.split()
    for pattern, why in NOT_RUN:
        if pattern.search(step.command):
            step.status, step.why = "skipped", why
            return None
    if words[0] in EDITORS and len(words) == 2:  # the learner writes the file: the lesson's code/ has it
        source = lesson / "code" / Path(words[1]).name
        if not source.is_file():
            step.status, step.why = "skipped", f"the learner writes {words[1]}; the lesson's code/ has no such file"
            return None
        return f"cp {shlex.quote(str(source))} {shlex.quote(words[1])}"
    if words[0] == "seff" and len(words) == 2 and words[1].isdigit():  # the page's job id: this run's last
        return 'seff "$(sacct -n -X -P -o jobid | tail -n 1)"'
    return step.command


def _mark() -> str:
    """What starts the runner's own lines in an episode's output: nothing a step prints."""
    return f"@@lab-lesson-{secrets.token_hex(4)}@@"


def script(found: list[Step], lesson: Path, mark: str) -> str:
    """The bash that plays an episode's steps as a learner's terminal, each
    between two lines that start with `mark` (its number, exit status, time)."""
    # One terminal all day: the last episode's aliases, variables (an active
    # virtualenv), functions and folder carry over (STATE, saved at its end).
    # A terminal has USER and LOGNAME (docker exec and some batch shells do not).
    lines = ["shopt -s expand_aliases", 'export USER="${USER:-$(id -un)}" LOGNAME="${LOGNAME:-$(id -un)}"',
             'cd "$HOME"', f'[ -f {STATE} ] && . {STATE} >/dev/null 2>&1']
    for number, step in enumerate(found):
        if step.status == "skipped":
            continue
        line = _prepared(step, lesson)
        if line is None:
            continue
        if _background(line):  # the job says its own exit status when it ends (a learner's `wait` may reap it)
            line = f"{{ {line.rstrip().removesuffix('&')}\nprintf '\\n{mark} job {number} %s\\n' \"$?\"; }} &"
        # (Every step's stdin is the script's: /dev/null, as nothing here types into a prompt.)
        lines += [f"printf '\\n{mark} start {number} %s\\n' \"$(date +%s.%N)\"", line,
                  f"printf '\\n{mark} end {number} %s %s\\n' \"$?\" \"$(date +%s.%N)\""]
    lines += ["wait", f"{{ alias -p; declare -px; declare -f; printf 'cd %q\\n' \"$PWD\"; }} >{STATE} 2>/dev/null"]
    return "\n".join(lines) + "\n"


def run_episode(page: Path, lesson: Path, home: Path, timeout: float) -> list[Step]:
    """The episode's steps, played in one bash (a learner's terminal) here, timed."""
    found = steps(page.read_text())
    mark = _mark()
    env = dict(os.environ, HOME=str(home))
    process = subprocess.Popen(["bash", "-l", "-c", script(found, lesson, mark)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
                               start_new_session=True)
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return read(found, output, mark, timed_out, timeout, lesson)


def read(found: list[Step], output: str, mark: str, timed_out: bool, timeout: float, lesson: Path) -> list[Step]:
    """The steps with their status, time and output, from what their bash printed."""
    own = frozenset(path.stem for path in (lesson / "code").glob("*.py*"))
    current: Step | None = None
    started = 0.0
    lines = output.splitlines()
    begun: dict[int, int] = {}  # step -> its first line
    for index, line in enumerate(lines):
        if line.startswith(mark):
            fields = line.split()
            step = found[int(fields[2])]
            if fields[1] == "start":
                current, started = step, float(fields[3])
                begun[int(fields[2])] = index
            elif fields[1] == "end":
                step.seconds = round(float(fields[4]) - started, 2)
                step.status = "ok" if fields[3] == "0" else "failed"
                if step.status == "failed":
                    step.why = cause(step.output, own) or f"exit status {fields[3]}"
            elif fields[3] != "0":  # a background job that failed: its lines came after its step began
                since = [x for x in lines[begun[int(fields[2])]:index] if not x.startswith(mark)]
                step.status = "failed"
                step.why = cause(since, own) or f"its job ended with exit status {fields[3]}"
            continue
        if current is not None and (line or current.output):
            current.output.append(line)  # a background job's late lines go with the step then running
    for step in found:
        if step.status == "not run":
            step.status = "not reached"
            step.why = f"the episode ran out of its {timeout:g} s" if timed_out else "the episode's shell ended"
        while step.output and not step.output[-1]:
            step.output.pop()
        if step.expected is not None and step.status in ("ok", "failed"):
            step.shape = compare(step.output, step.expected)
    return found


def _background(command: str) -> bool:
    """`srun python x.py&`: a job the learner left running."""
    return command.rstrip().endswith("&") and not command.rstrip().endswith("&&")


def _fenced(lines: list[str], kind: str) -> list[str]:
    return ["~~~", *lines, "~~~", f"{{: .{kind}}}"]


STATUSES = ("ok", "failed", "skipped", "not reached")


def counts(found: list[Step]) -> dict[str, int]:
    return {status: sum(step.status == status for step in found) for status in STATUSES}


def report(name: str, found: list[Step]) -> str:
    lines = [f"# {name}: {', '.join(f'{n} {status}' for status, n in counts(found).items() if n)}", "",
             "| # | step | status | s | output beside the page's | cause and fix |", "|---|---|---|---|---|---|"]
    for number, step in enumerate(found, 1):
        command = step.command.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {number} | `{command}` | {step.status} | {step.seconds if step.seconds is not None else ''}"
                     f" | {step.shape} | {step.why} |")
    for number, step in enumerate(found, 1):
        if step.status in ("ok", "failed") and (step.output or step.expected is not None):
            lines += ["", f"## {number}. `{step.command}` (line {step.line})", "", "Here:", "",
                      *_fenced(step.output, "output")]
            if step.expected is not None:
                lines += ["", "The page:", "", *_fenced(step.expected, "output")]
    return "\n".join(lines) + "\n"


def outputs(found: list[Step]) -> str:
    """The page's output blocks as this cluster prints them, each after its command, ready to paste."""
    lines: list[str] = []
    for step in found:
        if step.expected is not None and step.status in ("ok", "failed"):
            lines += [*_fenced([f"$ {step.command}"], "language-bash"), *_fenced(step.output, "output"), ""]
    return "\n".join(lines)


def _write(out: Path, name: str, found: list[Step], seconds: float, summary: list[str]) -> int:
    """An episode's report, JSON and output blocks; its row of the summary; its failures said. Their count."""
    count = counts(found)
    summary.append(f"| {name} | {count['ok']} | {count['failed']} | {count['skipped']} | "
                   f"{count['not reached']} | {seconds:.0f} |")
    write_atomic(out / f"{name}.md", report(name, found))
    write_atomic(out / f"{name}.json", json.dumps([asdict(s) for s in found], indent=2) + "\n")
    write_atomic(out / f"{name}.outputs.md", outputs(found))
    for number, step in enumerate(found, 1):
        if step.status in ("failed", "not reached"):
            print(f"  {number}. {step.command.splitlines()[0]}: {step.status}: {step.why}")
    return count["failed"] + count["not reached"]


def _prepare(folder: Path, lesson: Path, pages: list[Path], out: Path, home: Path, timeout: float) -> int:
    """Two steps, for a lab in an image (bin/lab-apptainer): here the episodes'
    scripts, for the learner's own shell outside the image to run (where the
    site's module and virtualenv are); then --finish reads what they printed."""
    for number, page in enumerate(pages):
        found, mark = steps(page.read_text()), _mark()
        name = f"{number:02d}-{page.stem}"
        write_atomic(folder / f"{name}.sh", script(found, lesson, mark))
        write_atomic(folder / f"{name}.json", json.dumps({"page": page.stem, "mark": mark,
                                                          "steps": [asdict(s) for s in found]}) + "\n")
    for key, value in (("home", home), ("out", out), ("timeout", f"{timeout:g}")):
        write_atomic(folder / key, f"{value}\n")
    return 0


def _finish(folder: Path, lesson: Path) -> int:
    out = Path((folder / "out").read_text().strip())
    timeout = float((folder / "timeout").read_text())
    failed, summary = 0, list(SUMMARY)
    for saved in sorted(folder.glob("*.json")):
        episode = json.loads(saved.read_text())
        printed, status = saved.with_suffix(".out"), saved.with_suffix(".status")
        timed_out = status.exists() and status.read_text().strip() == "124"  # timeout(1)'s status
        found = read([Step(**step) for step in episode["steps"]], printed.read_text() if printed.exists() else "",
                     episode["mark"], timed_out, timeout, lesson)
        print(f"lesson: {episode['page']}", flush=True)
        failed += _write(out, episode["page"], found, sum(s.seconds or 0 for s in found), summary)
    return _summary(out, lesson, summary, failed)


SUMMARY = ["| episode | ok | failed | skipped | not reached | s |", "|---|---|---|---|---|---|"]


def _summary(out: Path, lesson: Path, summary: list[str], failed: int) -> int:
    write_atomic(out / "index.md", f"# lab lesson {lesson}\n\n" + "\n".join(summary) + "\n")
    print("\n".join(summary))
    print(f"lesson: reports in {out}")
    return 1 if failed else 0


def command(plan, args) -> int:
    lesson = Path(args.path).expanduser().resolve()
    pages = order(lesson, args.episodes)
    if args.finish:
        return _finish(Path(args.finish), lesson)
    out = new_run_dir(plan.results, prefix="lesson-run-")
    home = Path.home() / ".lab-lesson" / out.name  # the compute nodes share the real home
    home.mkdir(parents=True)
    if args.prepare:
        return _prepare(Path(args.prepare), lesson, pages, out, home, args.episode_timeout)
    failed, summary = 0, list(SUMMARY)
    for page in pages:
        started = time.monotonic()
        print(f"lesson: {page.stem} ...", flush=True)
        found = run_episode(page, lesson, home, args.episode_timeout)
        failed += _write(out, page.stem, found, time.monotonic() - started, summary)
    return _summary(out, lesson, summary, failed)
