"""The part of Liquid that Carpentries lessons use, as Jekyll renders it: a
templated page (`{{ site.remote.prompt }} sbatch ...`, `{% include
{{ site.snippets }}/scheduler/basic-job-status.snip %}`) is rendered before
`lab lesson` reads it, or its commands and outputs are never found.

Jekyll's own include tag (a path with `{{ }}` in it, no quotes) is not
standard Liquid, so no Liquid library renders these lessons as written; this
is the small subset they use: `{{ value | filter }}`, if/elsif/else/unless,
assign, capture, for, comment, raw and include. Anything else is kept out of
the page and named in `Page.unknown`.

An included `.snip` (a snippet library's output block) is marked on the
rendered page (`<!-- lab-snippet: scheduler/x.snip -->`), so the block it
gives can be written again from this cluster (`lab lesson --snippets`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = re.compile(r"(\{\{-?.*?-?\}\}|\{%-?.*?-?%\})", re.S)
TAG = re.compile(r"\{%-?\s*(\w+)\s*(.*?)\s*-?%\}", re.S)
SNIPPET_MARK = "<!-- lab-snippet: {} -->"
ENDS = {"if": ("elsif", "else", "endif"), "unless": ("else", "endunless"), "for": ("endfor",),
        "capture": ("endcapture",), "comment": ("endcomment",), "raw": ("endraw",)}


@dataclass
class Page:
    text: str
    missing: list[str] = field(default_factory=list)   # includes not found under _includes/
    unknown: list[str] = field(default_factory=list)   # tags this renderer does not play


def render(text: str, site: dict, includes: Path, snippets: str = "") -> Page:
    """The page as Jekyll would render it with `site` (the lesson's _config.yml)."""
    page = Page("")
    page.text = _Renderer(includes, snippets.strip("/"), page).run(text, {"site": site, "page": {}})
    return page


class _Renderer:
    def __init__(self, includes: Path, snippets: str, page: Page):
        self.includes, self.snippets, self.page, self.depth = includes, snippets, page, 0

    def run(self, text: str, scope: dict) -> str:
        tokens = TOKEN.split(text)  # text, tag, text, tag, ..., text
        for i in range(1, len(tokens), 2):  # {%- and -%} take the whitespace beside them
            if tokens[i][2:3] == "-":
                tokens[i - 1] = tokens[i - 1].rstrip()
            if tokens[i][-3:-2] == "-":
                tokens[i + 1] = tokens[i + 1].lstrip()
        out: list[str] = []
        self._block(tokens, 0, scope, out, ())
        return "".join(out)

    def _block(self, tokens: list[str], i: int, scope: dict, out: list[str], ends: tuple) -> tuple[int, str]:
        """Render tokens from i until one of `ends` tags; return its index and name."""
        while i < len(tokens):
            token = tokens[i]
            if token.startswith("{{"):
                out.append(_text(self._value(token.strip("{}-").strip(), scope)))
            elif token.startswith("{%") and (tag := TAG.match(token)):
                name, args = tag.group(1), tag.group(2)
                if name in ends:
                    return i, token
                i = self._tag(name, args, tokens, i, scope, out)
            else:
                out.append(token)
            i += 1
        return i, ""

    def _tag(self, name: str, args: str, tokens: list[str], i: int, scope: dict, out: list[str]) -> int:
        if name in ("comment", "raw"):
            j = i + 1
            while j < len(tokens) and not ((closing := TAG.match(tokens[j])) and closing.group(1) == f"end{name}"):
                if name == "raw":
                    out.append(tokens[j])
                j += 1
            return j
        if name in ("if", "unless"):
            taken = self._condition(args, scope) != (name == "unless")
            while True:
                body: list[str] = []
                i, end = self._block(tokens, i + 1, scope, body, ENDS[name])
                if taken:
                    out += body
                    taken = None  # type: ignore[assignment]  # a branch ran: skip the rest
                closing = TAG.match(end) if end else None
                if not closing or closing.group(1).startswith("end"):
                    return i
                if taken is False:
                    taken = closing.group(1) == "else" or self._condition(closing.group(2), scope)
        if name == "capture":
            body = []
            i, _ = self._block(tokens, i + 1, scope, body, ENDS[name])
            scope[args.strip()] = "".join(body)
            return i
        if name == "assign":
            target, _, expression = args.partition("=")
            scope[target.strip()] = self._value(expression.strip(), scope)
            return i
        if name == "for":
            variable, _, source = args.partition(" in ")
            start, items = i, self._value(source.strip(), scope) or []
            body = []
            i, _ = self._block(tokens, i + 1, dict(scope), body, ENDS[name])  # finds the end
            for item in items if isinstance(items, list) else []:
                body = []
                self._block(tokens, start + 1, dict(scope, **{variable.strip(): item}), body, ENDS[name])
                out += body
            return i
        if name in ("include", "include_relative"):
            out.append(self._include(args, scope))
            return i
        self.page.unknown.append(name)
        return i

    def _include(self, args: str, scope: dict) -> str:
        # Jekyll: {% include path/{{ var }}.snip key="value" key2=variable %}
        path = re.sub(r"\{\{(.*?)\}\}", lambda m: _text(self._value(m.group(1).strip(), scope)), args)
        words = path.split()
        name, params = words[0].strip("'\""), {}
        for word in re.findall(r"(\w[\w-]*)=(\"[^\"]*\"|'[^']*'|\S+)", path):
            params[word[0]] = self._value(word[1], scope)
        source = self.includes / name.lstrip("/")
        if not source.is_file() or self.depth > 10:
            self.page.missing.append(name)
            return ""
        self.depth += 1
        text = self.run(source.read_text(), dict(scope, include=params))
        self.depth -= 1
        if name.endswith(".snip"):
            inside = name.lstrip("/")
            if self.snippets and inside.startswith(self.snippets + "/"):
                inside = inside[len(self.snippets) + 1:]
            return SNIPPET_MARK.format(inside) + "\n" + text
        return text

    def _condition(self, expression: str, scope: dict) -> bool:
        for part in re.split(r"\s+or\s+", expression):
            if all(self._comparison(x, scope) for x in re.split(r"\s+and\s+", part)):
                return True
        return False

    def _comparison(self, expression: str, scope: dict) -> bool:
        match = re.match(r"(.+?)\s*(==|!=|>=|<=|>|<|\bcontains\b)\s*(.+)", expression)
        if not match:
            return _truthy(self._value(expression, scope))
        left, op, right = self._value(match.group(1), scope), match.group(2), self._value(match.group(3), scope)
        if op == "contains":
            return right in (left or "")
        try:
            return {"==": left == right, "!=": left != right, ">": left > right, "<": left < right,
                    ">=": left >= right, "<=": left <= right}[op]
        except TypeError:
            return False

    def _value(self, expression: str, scope: dict):
        """A literal or a dotted variable, then its filters (default kept; the rest change nothing here)."""
        head, *filters = [x.strip() for x in re.split(r"\|(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", expression)]
        value = _literal(head, scope)
        for spec in filters:
            name, _, argument = spec.partition(":")
            if name.strip() == "default" and not _truthy(value):
                value = _literal(argument.strip(), scope)
        return value


def _literal(text: str, scope: dict):
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    if text in ("nil", "null", "empty", ""):
        return None
    value: object = scope
    for key in re.findall(r"[\w-]+", text):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _truthy(value) -> bool:
    return value is not None and value is not False


def _text(value) -> str:
    return "" if value is None else str(value)

