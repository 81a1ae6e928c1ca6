"""The files a learner writes, as the page shows them at each step.

A page shows a file after `nano X` (the next block), in a block a link to
`code/X` names, or as an excerpt of the file being edited: often only part of
it, the rest elided by `...` lines (`...` for unchanged lines, `  ...` inside
a function). The learner's file at that step is their previous version with
the shown parts put in: `merge` finds where each shown part goes by the lines
it shares with the previous version (anchors), and a part that shows a new
body for a `def main():` replaces that body whole.

`Files` follows the learner's files through the day (`cp`, `mv`, each edit);
a file the page never shows falls back to the lesson's `code/`, which holds
each file's last version only.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ELISION = re.compile(r"^\s*(\.\.\.|…|#\s*\.\.\.)\s*$")
# A shown line this alike to a line of the previous version is that line, changed.
ALIKE = 0.75


def excerpt(lines: list[str]) -> bool:
    return any(ELISION.match(line) for line in lines)


@dataclass
class _Part:
    lines: list[str]
    after_elision: bool            # an elision stands before it
    then: int | None               # the indent of the elision after it; None: it ends the file


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _key(line: str) -> str | None:
    """What two lines share when one is the other (commented out or in, re-indented)."""
    return line.strip().lstrip("#").strip() or None


def _parents(lines: list[str]) -> list[str | None]:
    """Each line's enclosing header (the last line above it that is less indented):
    '' at the top level, None where the header is not among these lines."""
    found: list[str | None] = []
    stack: list[tuple[int, str]] = []
    for line in lines:
        if not line.strip():
            found.append(None)
            continue
        while stack and stack[-1][0] >= _indent(line):
            stack.pop()
        found.append(stack[-1][1] if stack else ("" if _indent(line) == 0 else None))
        stack.append((_indent(line), _key(line) or ""))
    return found


def _parts(shown: list[str]) -> list[_Part]:
    parts: list[_Part] = []
    current: list[str] = []
    elided = False
    for line in shown + [None]:  # type: ignore[list-item]
        if line is None or ELISION.match(line):
            while current and not current[-1].strip():
                current.pop()
            if any(x.strip() for x in current):
                parts.append(_Part(current, elided, None if line is None else _indent(line)))
            current, elided = [], elided or line is not None
            continue
        if current or line.strip() or not elided:
            current.append(line)
    return parts


def merge(base: list[str], shown: list[str]) -> list[str]:
    """The learner's file: `shown` (with `...` elisions) put into `base`."""
    if not excerpt(shown):
        return shown
    out: list[str] = []
    cursor = 0
    base_parents = _parents(base)
    for part in _parts(shown):
        own_parents = _parents(part.lines)
        rest = [(_key(x) or f"\0{n}") for n, x in enumerate(base[cursor:])]
        mine = [(_key(x) or f"\1{n}") for n, x in enumerate(part.lines)]
        matcher = difflib.SequenceMatcher(None, mine, rest, autojunk=False)
        anchors = [(a + k, cursor + b + k) for a, b, size in matcher.get_matching_blocks() for k in range(size)
                   if own_parents[a + k] is None or own_parents[a + k] == base_parents[cursor + b + k]]
        anchors = anchors or _alike(base, cursor, part.lines)
        if not anchors:
            start = end = cursor
        else:
            (_, start), (last, end) = anchors[0], anchors[-1]
            end = _end(base, part, last, end)
        if not part.after_elision:
            start = cursor  # the part begins the file
        if part.then is None:
            end = len(base)  # the part ends the file
        out += base[cursor:start] + part.lines
        cursor = max(end, start)
    return out + base[cursor:]


def _alikeness(one: str, other: str) -> float:
    return difflib.SequenceMatcher(None, one.strip(), other.strip()).ratio()


def _alike(base: list[str], cursor: int, lines: list[str]) -> list[tuple[int, int]]:
    """With no line shared exactly: each shown line's most alike line of base
    (same indent, from the cursor on), the line it changes."""
    found: list[tuple[int, int]] = []
    for a, line in enumerate(lines):
        scores = [(_alikeness(line, x), b)
                  for b, x in enumerate(base[cursor:], cursor) if x.strip() and _indent(x) == _indent(line)]
        score, b = max(scores, default=(0.0, 0))
        if line.strip() and score >= ALIKE and (not found or b > found[-1][1]):
            found.append((a, b))
    return found


def _end(base: list[str], part: _Part, last: int, end: int) -> int:
    """Where the part's region of `base` ends, its last anchor at base[end]: past
    a body the part shows anew (a header's whole body, or lines it changed)."""
    tail = [x for x in part.lines[last + 1:] if x.strip()]
    header = base[end]
    end += 1
    if tail and header.rstrip().endswith(":") and part.then is not None and part.then <= _indent(header) \
            and min(map(_indent, tail)) > _indent(header):
        while end < len(base) and (not base[end].strip() or _indent(base[end]) > _indent(header)):
            end += 1
        while not base[end - 1].strip():
            end -= 1
        return end
    # Lines after the last anchor that the tail changed (the same print, another text).
    probe = end
    while tail and probe < len(base):
        line = base[probe]
        if line.strip():
            if _indent(line) < min(map(_indent, tail)) or \
                    max(_alikeness(line, x) for x in tail) < ALIKE:
                break
            end = probe + 1
        probe += 1
    return end


def shares(base: list[str], shown: list[str]) -> bool:
    """Whether an excerpt has a line of base (else it is an aside, not an edit of it)."""
    keys = {_key(line) for line in base} - {None}
    return any(_key(line) in keys for line in shown if not ELISION.match(line))


class Files:
    """The learner's files by name, through the day: what the page showed last."""

    def __init__(self, code: list[Path]):
        self.code = code
        self.known: dict[str, list[str]] = {}

    def fallback(self, name: str) -> list[str] | None:
        for folder in self.code:
            if (folder / Path(name).name).is_file():
                return (folder / Path(name).name).read_text().splitlines()
        return None

    def current(self, name: str) -> list[str] | None:
        key = Path(name).name
        return self.known[key] if key in self.known else self.fallback(name)

    def edit(self, name: str, shown: list[str]) -> tuple[list[str], str]:
        """The file after the page's edit, and where its text came from."""
        if not excerpt(shown):
            self.known[Path(name).name] = shown
            return shown, "as the page shows it"
        base = self.current(name)
        if base is None:
            lines = [x for x in shown if not ELISION.match(x)]
            how = "the page shows part of it and the rest is nowhere (no earlier version, none in code/)"
        else:
            lines = merge(base, shown)
            how = "the page's excerpt put into the learner's previous version"
        self.known[Path(name).name] = lines
        return lines, how

    def shell(self, command: str) -> None:
        """Follow `cp A B` and `mv A B` (a learner's copies of a file they wrote)."""
        try:
            words = shlex.split(command)
        except ValueError:
            return
        if len(words) == 3 and words[0] in ("cp", "mv") and not words[1].startswith("-"):
            source, target = Path(words[1]).name, Path(words[2]).name
            if target in ("", ".", ".."):
                target = source
            lines = self.current(source)
            if lines is not None:
                self.known[target] = lines
