"""`lab lesson PATH`: an instructor's dry run of a Carpentries lesson, on the
cluster it runs on: the Jekyll layout (`_episodes/*.md`, `_config.yml`, `code/`;
Liquid-templated pages rendered with `_includes/` and its snippet library
first) or the Workbench's (`episodes/*.md`, `config.yaml`, fenced divs).

Each episode's shell lines (`$ ...`, or the lesson's own prompt, in its shell
blocks on the page, not in its exercises) run in order, as in a learner's
terminal that stays open all day: aliases, `cd`, variables (an active
virtualenv) and functions carry over, within an episode and to the next; `&`
jobs run on, and a queue the page shows while they run is waited for until it
looks like the page's. A file the learner writes (`nano hello.py`) is the one
the page shows at that step (lab/edits.py), `code/` only where the page shows
none. An episode with code but no step found fails with its cause. Each
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import liquid
from .edits import Files, excerpt, shares
from .errors import BadInput
from .results import new_run_dir, write_atomic

FENCE = re.compile(r"^(~{3,}|`{3,})\s*\{?\.?([\w-]*)\}?\s*$")
ATTRIBUTE = re.compile(r"^\{:\s*\.([\w-]+)\s*\}$")
# A Workbench fenced div (::: challenge ... :::); those that hold exercises.
DIV = re.compile(r"^:{3,}\s*\{?\.?([\w-]*)\}?\s*$")
EXERCISES = {"challenge", "solution", "exercise", "discussion", "hint", "spoiler"}
# A gitfile link after a block names the file it shows: [hello.py](.../code/hello.py)
FILE_LINK = re.compile(r"^\[([\w.+-]+)\]\([^)]*/([\w.+-]+)\)\s*(</div>)?\s*$")
SNIPPET = re.compile(r"^<!-- lab-snippet: (\S+) -->$")
LIST_ITEM = re.compile(r"^\s*(\d+[.)]|[-*+])\s+(?=[`~]{3})")
SHELL = {"language-bash", "bash", "language-shell", "shell", "sh"}
EDITORS = {"nano", "vim", "vi", "emacs"}
# Where an episode's shell leaves its state for the next (in the run's own home).
STATE = '"$HOME/.lab-lesson-state"'
# Steps that need what a dry run has not: (pattern on the command, why).
NOT_RUN = [(re.compile(r"^ssh\b"), "the dry run is on the cluster already"),
           (re.compile(r"^(xclock|xeyes|display|eog)\b"), "needs a display (ssh -X): look at it by hand"),
           (re.compile(r"^exit\b"), "would end the episode's shell"),
           (re.compile(r"^(srun\b.*--pty|salloc\b)"),
            "an interactive shell on a compute node: the dry run goes on on the login node")]
# A job id the page shows in a command is the page's job: this run's instead.
PAGE_JOBS = [(re.compile(r"\bslurm-\d+\.out\b"), 'slurm-"$(__lab_last_job)".out'),
             (re.compile(r"^((?:seff|scancel)\s+|.*\s-j\s*)\d+\b"), r'\1"$(__lab_last_job)"')]
# How long a step that reads a job's output file waits for the job to end.
JOB_WAIT = 120
# How long a queue the page shows (squeue while a & job runs) is waited for.
QUEUE_WAIT = 30
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
    lines, its exercise depth (0 on the page, 1 in an exercise, 2 in its
    solution: blockquotes, or Workbench divs), its first line in the file, the
    file a link after it names, the snippet it came from, and whether its kind
    came from an info string (```bash) rather than an attribute line."""
    kind: str
    lines: list[str]
    depth: int
    line: int
    file: str = ""
    snippet: str = ""
    info: bool = False


@dataclass
class Step:
    command: str
    line: int
    expected: list[str] | None = None
    status: str = "not run"       # ok, failed, skipped, not reached
    why: str = ""                 # a skip's reason, a failure's cause and fix, where a file came from
    seconds: float | None = None
    output: list[str] = field(default_factory=list)
    shape: str = ""               # the output beside the page's: same shape, or how alike
    shown: list[str] | None = None  # an editor step: the file as the page shows it (maybe an excerpt)
    content: list[str] | None = None  # an editor step: the file the learner has then
    snippet: str = ""             # the snippet library file its expected output came from
    typed: bool = True            # False: an edit the page shows with no editor line for it
    aside: bool = False           # such an edit by an unnamed excerpt: one only if it shares a line with the file


@dataclass
class Prompts:
    """What starts a typed line: on the cluster ($, the lesson's remote.prompt), on the laptop."""
    remote: tuple[str, ...] = ("$",)
    local: tuple[str, ...] = ()

    def typed(self, lines: list[str]) -> bool:
        """Whether any of these lines is typed at a prompt."""
        return any(self.split(line.strip()) for line in lines)

    def split(self, line: str) -> tuple[str, str] | None:
        """(where, command) of a typed line: where is 'remote' or 'local'."""
        for where, prompts in (("local", self.local), ("remote", self.remote)):
            for prompt in sorted(prompts, key=len, reverse=True):
                if line == prompt or line.startswith(prompt + " "):
                    return where, line[len(prompt):].strip()
        return None


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
    """Every fenced block (~~~ or ```) of a page, in blockquotes and fenced
    divs too, with the kind its kramdown attribute line ({: .output}) or its
    info string gives, and the file a gitfile link after it names."""
    lines, found, i = text.splitlines(), [], 0
    divs: list[str] = []
    snippet = ""
    while i < len(lines):
        depth, content = _unquote(lines[i])
        if div := DIV.match(content.strip()):
            if div.group(1):
                divs.append(div.group(1))
            elif divs:
                divs.pop()
            i += 1
            continue
        if mark := SNIPPET.match(content.strip()):
            snippet = mark.group(1)
        item = LIST_ITEM.match(content)  # a fence may open a list item: `1. ~~~`
        opening = FENCE.match(content[item.end():].strip() if item else content.strip())
        if not opening:
            i += 1
            continue
        indent = item.end() if item else len(content) - len(content.lstrip())
        fence, body, j = opening.group(1), [], i + 1
        while j < len(lines):
            closing = FENCE.match(_unquote(lines[j], depth)[1].strip())
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not closing.group(2):
                break
            line = _unquote(lines[j], depth)[1]
            body.append(line[min(indent, len(line) - len(line.lstrip())):])  # the fence's indent is not the text's
            j += 1
        kind, info = opening.group(2), bool(opening.group(2))
        if j + 1 < len(lines) and (attribute := ATTRIBUTE.match(_unquote(lines[j + 1])[1].strip())):
            kind, info, j = attribute.group(1), False, j + 1
        named = ""
        if j + 1 < len(lines) and (link := FILE_LINK.match(_unquote(lines[j + 1])[1].strip())) \
                and link.group(1) == link.group(2):
            named = link.group(1)
        found.append(Block(kind, body, depth + sum(d in EXERCISES for d in divs), i + 1, named, snippet, info))
        snippet = ""
        i = j + 1
    return found


def _commands(block: Block, prompts: Prompts) -> list[Step]:
    """The lines typed in a shell block (a line ending in \\ goes on); a
    Workbench ```bash block with no prompt is all commands."""
    typed = [prompts.split(line.strip()) for line in block.lines]
    bare = block.info and block.kind in SHELL and not any(typed)
    commands: list[Step] = []
    pending, start, where = "", 0, "remote"
    for offset, raw in enumerate(block.lines):
        line = raw.rstrip()
        if pending:
            pending += "\n" + line
        elif said := typed[offset]:
            (where, pending), start = said, block.line + 1 + offset
        elif bare and line.strip() and not line.lstrip().startswith("#"):
            pending, start, where = line.strip(), block.line + 1 + offset, "remote"
        else:
            continue  # output shown inside the command block
        if pending.endswith("\\"):
            continue
        if pending.strip():
            step = Step(pending.strip(), start)
            if where == "local":
                step.status, step.why = "skipped", "typed on the learner's own computer, not the cluster"
            commands.append(step)
        pending = ""
    return commands


def _is_shell(block: Block, prompts: Prompts) -> bool:
    """A block of typed lines: a shell block by its kind, or any block with prompts
    (a page that gives none, or a lesson's own prompt in an output block)."""
    return prompts.typed(block.lines) or (block.kind in SHELL and block.info and bool(block.lines))


def steps(text: str, prompts: Prompts | None = None) -> list[Step]:
    """The shell lines a learner types, in order, each with the page's output
    block after it; an editor's file is the block after it (or a block a
    gitfile link names, or an excerpt of the file being edited); those in
    exercises are listed as skipped."""
    prompts = prompts or Prompts()
    found: list[Step] = []
    page = blocks(text)
    edited = ""          # the file this page edits last
    used: set[int] = set()  # blocks taken as a file's text
    for index, block in enumerate(page):
        following = page[index + 1] if index + 1 < len(page) else None
        if index in used:
            continue
        if not _is_shell(block, prompts) or block.kind in ("output", "error"):
            # A block the page shows as a file without an editor line before it.
            named = block.file or (edited if excerpt(block.lines) and block.kind not in ("output", "error")
                                   else "")
            if named and block.depth == 0 and block.lines:
                found.append(Step(f"nano {named}", block.line, shown=block.lines, typed=False, aside=not block.file,
                                  why=f"the page edits {named} here (line {block.line}), with no editor line"))
                edited = named
            continue
        commands = _commands(block, prompts)
        if not commands:
            continue
        last = commands[-1]
        words = last.command.split()
        before = commands[-2].command.split() if len(commands) > 1 else []
        if words[0] == "cat" and before[:1] and before[0] in EDITORS and before[1:] == words[1:] and following \
                and following.depth == block.depth and not prompts.typed(following.lines):
            commands[-2].shown = last.expected = following.lines  # `nano x.sh; cat x.sh`: the file is what cat shows
            used.add(index + 1)
        if words[0] in EDITORS and len(words) == 2 and following and following.depth == block.depth \
                and not prompts.typed(following.lines):
            last.shown = following.lines
            used.add(index + 1)
            edited = words[1]
        elif following and following.kind in ("output", "error") and following.depth == block.depth:
            last.expected, last.snippet = following.lines, following.snippet
        if block.depth:
            for step in commands:
                step.status, step.why = "skipped", "in an exercise or its solution"
        found += commands
    return found


@dataclass
class Lesson:
    """A Carpentries lesson: its pages in order, its layout, its Liquid site
    (None: not templated), the folders its files fall back to, its prompts."""
    root: Path
    pages: list[Path]
    layout: str
    site: dict | None
    code: list[Path]
    prompts: Prompts

    def text(self, page: Path) -> tuple[str, liquid.Page | None]:
        """The page as a learner reads it: rendered when the lesson is templated."""
        raw = page.read_text()
        if self.site is None:
            return raw, None
        rendered = liquid.render(raw, self.site, self.root / "_includes", str(self.site.get("snippets") or ""))
        return rendered.text, rendered


# (layout, its episodes' folder, its configuration, the key that orders the episodes)
LAYOUTS = (("jekyll", "_episodes", "_config.yml", "episode_order"),
           ("workbench", "episodes", "config.yaml", "episodes"))


def load(path: Path, chosen: list[str] | None, cluster: Callable[[], dict] | None = None) -> Lesson:
    """The lesson at path, its episodes in its own order (or only `chosen`).
    `cluster`: this cluster's values for a templated lesson's `site` (asked
    only when the lesson is templated)."""
    import yaml

    found = [layout for layout in LAYOUTS if (path / layout[1]).is_dir()]
    if not found:
        raise BadInput(f"{path} has no _episodes/ folder (a Jekyll lesson) nor episodes/ (a Workbench lesson): "
                       "give a Carpentries lesson's folder")
    layout, folder_name, config_name, order_key = found[0]
    folder = path / folder_name
    pages = {page.stem: page for page in folder.glob("*.md")}
    config: dict = {}
    if (path / config_name).exists():
        config = yaml.safe_load((path / config_name).read_text()) or {}
    listed = [Path(str(name)).stem for name in config.get(order_key) or []]
    names = [name for name in listed if name in pages] or sorted(pages)
    if chosen:
        unknown = [name for name in chosen if name not in pages]
        if unknown:
            raise BadInput(f"no episode {', '.join(unknown)} in {folder} (there: {', '.join(sorted(pages))})")
        names = [name for name in names if name in chosen]
    templated = layout == "jekyll" and any(re.search(r"\{\{|\{%", pages[name].read_text()) for name in names)
    site = _merged(config, cluster() if cluster else {}) if templated else None
    prompts = Prompts()
    if site:
        remote, local = (site.get("remote") or {}).get("prompt"), (site.get("local") or {}).get("prompt")
        prompts = Prompts(("$",) + ((str(remote),) if remote else ()), (str(local),) if local else ())
    code = [path / "code", folder / "files", path / "files"]
    return Lesson(path, [pages[name] for name in names], layout, site, code, prompts)


def _merged(base: dict, over: dict) -> dict:
    """`over` on `base`, key by key (this cluster's values over the lesson's)."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return merged


def no_steps(text: str, rendered: liquid.Page | None, prompts: Prompts) -> str:
    """Why a page with code gives no step ('' when it has no code: a break, an introduction)."""
    page = blocks(text)
    causes = []
    missing = sorted({name for name in (rendered.missing if rendered else []) if page or name.endswith(".snip")})
    if missing:
        causes.append(f"includes not found under _includes/: {', '.join(missing)}")
    if re.search(r"\{\{|\{%", text):
        causes.append("Liquid ({{ }} or {% %}) left unrendered: give the lesson's _config.yml")
    shells = [b for b in page if b.kind in SHELL]
    if shells:
        known = ", ".join(prompts.remote + prompts.local)
        causes.append(f"{len(shells)} shell block(s), but no line starts with a prompt lab knows ({known})")
    if not page and not causes:
        return ""
    if page and not causes:
        kinds = sorted({b.kind or "no kind" for b in page})
        causes.append(f"{len(page)} code block(s), none of them shell ({', '.join(kinds)})")
    return "no step found: " + "; ".join(causes)


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


def play_files(found: list[Step], files: Files) -> list[Step]:
    """Each editor step's file as the learner has it then (the page's version,
    else code/'s), following the learner's cp and mv; exercises leave no file."""
    played = []
    for step in found:
        words = step.command.split()
        if step.status == "skipped":
            played.append(step)
            continue
        if step.aside and not shares(files.current(words[1]) or [], step.shown or []):
            continue  # an excerpt with no line of the file being edited: an aside, not an edit
        played.append(step)
        if words[0] in EDITORS and len(words) == 2:
            if step.shown is not None:
                before = files.current(words[1])
                step.content, how = files.edit(words[1], step.shown)
                if not step.typed and _text(before) == _text(step.content):  # no editor line, nothing new
                    step.status, step.why = "skipped", f"the page shows {words[1]} again, as the learner has it"
                step.why = step.why or f"{how} (line {step.line})"
            else:
                step.content = files.current(words[1])
                step.why = "the page shows no text for it: code/'s version" if step.content is not None else ""
        else:
            files.shell(step.command)
    return played


def _text(lines: list[str] | None) -> str:
    return "\n".join(lines or []).rstrip()


def _prepared(step: Step, mark: str) -> str | None:
    """The bash line that plays the step, or None when it is not run (its status says why)."""
    words = step.command.split()
    for pattern, why in NOT_RUN:
        if pattern.search(step.command):
            step.status, step.why = "skipped", why
            return None
    if words[0] in EDITORS and len(words) == 2:  # the learner writes the file the page shows
        if step.content is None:
            step.status, step.why = "skipped", f"the learner writes {words[1]}; neither the page nor code/ shows it"
            return None
        end = mark.strip("@").replace("-", "_") + "_EOF"
        return f"cat >{shlex.quote(words[1])} <<'{end}'\n" + "".join(x + "\n" for x in step.content) + end
    line = step.command
    for pattern, ours in PAGE_JOBS:
        line = pattern.sub(ours, line)
    if PAGE_JOBS[0][0].search(step.command):  # the page reads the job's output once it ended
        line = f"__lab_job_ended; {line}"
    return line


def queue_states(lines: list[str] | None) -> str:
    """The job states (ST) of a squeue table the page shows, sorted: 'PD R'; '' for no table."""
    states, column = [], None
    for line in lines or []:
        words = line.split()
        if column is None and "JOBID" in words and "ST" in words:
            column = words.index("ST")
        elif column is not None and len(words) > column and words[0].isdigit():
            states.append(words[column])
    return " ".join(sorted(states)) if column is not None else ""


# This run's last job; waiting for it to end (bounded), as a learner does before reading its output.
JOBS = r"""__lab_last_job() { sacct -n -X -P -o jobid 2>/dev/null | tail -n 1; }
__lab_job_ended() {
  local job start=$SECONDS; job=$(__lab_last_job)
  while [ -n "$job" ] && [ -n "$(squeue -h -j "$job" -o %i 2>/dev/null)" ] && [ $((SECONDS - start)) -lt __WAIT__ ]
  do sleep 1; done
}"""
# Plays a queue view until its states are the page's (or QUEUE_WAIT runs out),
# then shows its last output and says how long it waited: `mark wait N S yes|no`.
QUEUE_LIKE = r"""__lab_queue_like() {
  local number=$1 want=$2 start=$SECONDS out got; shift 2
  while :; do
    out=$(eval "$*" 2>&1)
    got=$(printf '%s\n' "$out" | awk 'c && $1 ~ /^[0-9]/ {print $c; next}
      !c {for (i = 1; i <= NF; i++) if ($i == "ST") c = i}' | sort | tr '\n' ' ')
    [ "${got% }" = "$want" ] && break
    [ $((SECONDS - start)) -ge __WAIT__ ] && break
    sleep 1
  done
  printf '%s\n' "$out"
  [ "${got% }" = "$want" ] && got=yes || got=no
  printf '\n__MARK__ wait %s %s %s\n' "$number" "$((SECONDS - start))" "$got"
}"""


def _mark() -> str:
    """What starts the runner's own lines in an episode's output: nothing a step prints."""
    return f"@@lab-lesson-{secrets.token_hex(4)}@@"


def script(found: list[Step], mark: str) -> str:
    """The bash that plays an episode's steps as a learner's terminal, each
    between two lines that start with `mark` (its number, exit status, time)."""
    # One terminal all day: the last episode's aliases, variables (an active
    # virtualenv), functions and folder carry over (STATE, saved at its end).
    # A terminal has USER and LOGNAME (docker exec and some batch shells do not).
    lines = ["shopt -s expand_aliases", 'export USER="${USER:-$(id -un)}" LOGNAME="${LOGNAME:-$(id -un)}"',
             'cd "$HOME"', f'[ -f {STATE} ] && . {STATE} >/dev/null 2>&1',
             QUEUE_LIKE.replace("__WAIT__", str(QUEUE_WAIT)).replace("__MARK__", mark),
             JOBS.replace("__WAIT__", str(JOB_WAIT))]
    jobs_running = False
    for number, step in enumerate(found):
        if step.status == "skipped":
            continue
        line = _prepared(step, mark)
        if line is None:
            continue
        if _background(line):  # the job says its own exit status when it ends (a learner's `wait` may reap it)
            line = f"{{ {line.rstrip().removesuffix('&')}\nprintf '\\n{mark} job {number} %s\\n' \"$?\"; }} &"
            jobs_running = True
        elif jobs_running and (states := queue_states(step.expected)):
            # The page shows the queue while its jobs run: wait, bounded, until ours looks like it.
            line = f"__lab_queue_like {number} {shlex.quote(states)} {shlex.quote(line)}"
        # (Every step's stdin is the script's: /dev/null, as nothing here types into a prompt.)
        lines += [f"printf '\\n{mark} start {number} %s\\n' \"$(date +%s.%N)\"", line,
                  f"printf '\\n{mark} end {number} %s %s\\n' \"$?\" \"$(date +%s.%N)\""]
    lines += ["wait", "unset -f __lab_queue_like __lab_last_job __lab_job_ended",
              f"{{ alias -p; declare -px; declare -f; printf 'cd %q\\n' \"$PWD\"; }} >{STATE} 2>/dev/null"]
    return "\n".join(lines) + "\n"


PIP_INSTALL = re.compile(r"(^|[;&|(]\s*)(pip3?|python3?\s+-m\s+pip)\s+install\b")
PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")


def wheelhouse() -> str:
    """Where this site's pip finds its wheelhouse ('' for none): find-links in
    its pip configuration (or PIP_FIND_LINKS), as Alliance sites serve theirs."""
    import configparser

    if os.environ.get("PIP_FIND_LINKS"):
        return f"PIP_FIND_LINKS={os.environ['PIP_FIND_LINKS']}"
    for name in (*PIP_CONFIGS, os.environ.get("PIP_CONFIG_FILE", "")):
        path = Path(name).expanduser() if name else None
        if path is None or not path.is_file():
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if parser.has_option(section, "find-links"):
                return f"find-links = {parser.get(section, 'find-links').strip()} in {path}"
    return ""


def flag_pip(found: list[Step], where: str) -> None:
    """At a wheelhouse site, a pip install without --no-index: its way is the
    site's wheels alone (without, pip asks PyPI too: other builds, and nothing
    on a node without internet)."""
    if not where:
        return
    for step in found:
        if PIP_INSTALL.search(step.command) and "--no-index" not in step.command and step.status != "skipped":
            step.why = (f"this site serves a wheelhouse ({where}): its way is pip install --no-index, "
                        "its own wheels alone; without it pip asks PyPI too (other builds, and no answer on a "
                        "node without internet)")


def episode_steps(lesson: Lesson, page: Path, files: Files, site_wheels: str = "") -> tuple[list[Step], str]:
    """An episode's steps with the files they write (and pip installs flagged
    at a wheelhouse site), and why none was found ('' when found or no code)."""
    text, rendered = lesson.text(page)
    found = play_files(steps(text, lesson.prompts), files)
    flag_pip(found, site_wheels)
    return found, ("" if found else no_steps(text, rendered, lesson.prompts))


def run_episode(found: list[Step], lesson: Lesson, home: Path, timeout: float) -> list[Step]:
    """The episode's steps, played in one bash (a learner's terminal) here, timed."""
    mark = _mark()
    env = dict(os.environ, HOME=str(home))
    process = subprocess.Popen(["bash", "-l", "-c", script(found, mark)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
                               start_new_session=True)
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return read(found, output, mark, timed_out, timeout, lesson.code)


def read(found: list[Step], output: str, mark: str, timed_out: bool, timeout: float,
         code: list[Path]) -> list[Step]:
    """The steps with their status, time and output, from what their bash printed."""
    own = frozenset(path.stem for folder in code for path in folder.glob("*.py*"))
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
            elif fields[1] == "wait":
                states = queue_states(step.expected)
                step.why = (f"waited {fields[3]} s for the queue to look like the page's ({states})"
                            if fields[4] == "yes" else
                            f"the queue never looked like the page's ({states}) in {fields[3]} s: "
                            "the last one is shown")
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


def report(name: str, found: list[Step], empty: str = "") -> str:
    said = ", ".join(f"{n} {status}" for status, n in counts(found).items() if n)
    lines = [f"# {name}: {said or empty or 'no code on this page'}", "",
             "| # | step | status | s | output beside the page's | note: cause and fix, or where a file came from |",
             "|---|---|---|---|---|---|"]
    for number, step in enumerate(found, 1):
        command = step.command.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {number} | `{command}` | {step.status} | {step.seconds if step.seconds is not None else ''}"
                     f" | {step.shape} | {step.why} |")
    for number, step in enumerate(found, 1):
        if step.content is not None and step.shown is not None and excerpt(step.shown):
            lines += ["", f"## {number}. `{step.command}`: the page's excerpt (line {step.line}) in the learner's "
                      "file", "", *_fenced(step.content, "language-python")]
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


def _write(out: Path, name: str, found: list[Step], seconds: float, summary: list[str], empty: str = "") -> int:
    """An episode's report, JSON and output blocks; its row of the summary; its
    failures said (an episode with code and no step found is one). Their count."""
    count = counts(found)
    note = empty or ("" if found else "no code on this page")
    summary.append(f"| {name} | {count['ok']} | {count['failed']} | {count['skipped']} | "
                   f"{count['not reached']} | {seconds:.0f} | {note} |")
    write_atomic(out / f"{name}.md", report(name, found, empty))
    write_atomic(out / f"{name}.json", json.dumps([asdict(s) for s in found], indent=2) + "\n")
    write_atomic(out / f"{name}.outputs.md", outputs(found))
    if empty:
        print(f"  {name}: failed: {empty}")
    for number, step in enumerate(found, 1):
        if step.status in ("failed", "not reached"):
            print(f"  {number}. {step.command.splitlines()[0]}: {step.status}: {step.why}")
        elif step.why.startswith("this site serves a wheelhouse"):
            print(f"  {number}. {step.command.splitlines()[0]}: note: {step.why}")
    return count["failed"] + count["not reached"] + bool(empty)


def _prepare(folder: Path, lesson: Lesson, out: Path, home: Path, timeout: float) -> int:
    """Two steps, for a lab in an image (bin/lab-apptainer): here the episodes'
    scripts, for the learner's own shell outside the image to run (where the
    site's module and virtualenv are); then --finish reads what they printed."""
    files, wheels = Files(lesson.code), wheelhouse()
    for number, page in enumerate(lesson.pages):
        (found, empty), mark = episode_steps(lesson, page, files, wheels), _mark()
        name = f"{number:02d}-{page.stem}"
        write_atomic(folder / f"{name}.sh", script(found, mark))
        write_atomic(folder / f"{name}.json", json.dumps({"page": page.stem, "mark": mark, "empty": empty,
                                                          "steps": [asdict(s) for s in found]}) + "\n")
    for key, value in (("home", home), ("out", out), ("timeout", f"{timeout:g}")):
        write_atomic(folder / key, f"{value}\n")
    return 0


def _finish(folder: Path, lesson: Lesson, snippets: str | None) -> int:
    out = Path((folder / "out").read_text().strip())
    timeout = float((folder / "timeout").read_text())
    failed, summary, played = 0, list(SUMMARY), []
    for saved in sorted(folder.glob("*.json")):
        episode = json.loads(saved.read_text())
        printed, status = saved.with_suffix(".out"), saved.with_suffix(".status")
        timed_out = status.exists() and status.read_text().strip() == "124"  # timeout(1)'s status
        found = read([Step(**step) for step in episode["steps"]], printed.read_text() if printed.exists() else "",
                     episode["mark"], timed_out, timeout, lesson.code)
        print(f"lesson: {episode['page']}", flush=True)
        failed += _write(out, episode["page"], found, sum(s.seconds or 0 for s in found), summary, episode["empty"])
        played += found
    return _summary(out, lesson, summary, failed, played, snippets)


SUMMARY = ["| episode | ok | failed | skipped | not reached | s | note |", "|---|---|---|---|---|---|---|"]


def _summary(out: Path, lesson: Lesson, summary: list[str], failed: int, played: list[Step],
             snippets: str | None) -> int:
    write_atomic(out / "index.md", f"# lab lesson {lesson.root}\n\n" + "\n".join(summary) + "\n")
    print("\n".join(summary))
    if not played:
        print(f"lesson: no step found in any episode of {lesson.root}: nothing ran (see each episode's note)")
        failed += 1
    if snippets:
        from .snippets import write_library

        library = write_library(Path(snippets), lesson.site or {}, played)
        print(f"lesson: this cluster's snippet library in {library}")
    print(f"lesson: reports in {out}")
    return 1 if failed else 0


def command(plan, args) -> int:
    from .snippets import cluster_values

    lesson = load(Path(args.path).expanduser().resolve(), args.episodes, cluster_values)
    if args.finish:
        return _finish(Path(args.finish), lesson, args.snippets)
    out = new_run_dir(plan.results, prefix="lesson-run-")
    home = Path.home() / ".lab-lesson" / out.name  # the compute nodes share the real home
    home.mkdir(parents=True)
    if args.prepare:
        return _prepare(Path(args.prepare), lesson, out, home, args.episode_timeout)
    failed, summary, played = 0, list(SUMMARY), []
    files, wheels = Files(lesson.code), wheelhouse()
    for page in lesson.pages:
        started = time.monotonic()
        print(f"lesson: {page.stem} ...", flush=True)
        found, empty = episode_steps(lesson, page, files, wheels)
        run_episode(found, lesson, home, args.episode_timeout)
        failed += _write(out, page.stem, found, time.monotonic() - started, summary, empty)
        played += found
    return _summary(out, lesson, summary, failed, played, args.snippets)

