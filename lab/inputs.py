"""lab/inputs.txt, read: what the make variables and lab's flags of the same
name take (bin/preflight reads the same file). No heavy import here: graph.py,
which every worker imports, reads its schedulers and kernels from it."""

from __future__ import annotations

from pathlib import Path

TABLE = Path(__file__).with_name("inputs.txt")


def _read() -> dict[str, tuple[int, int] | tuple[str, ...]]:
    rules: dict[str, tuple[int, int] | tuple[str, ...]] = {}
    for line in TABLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, *rule = line.split()
            low, _, high = rule[0].partition("-")
            rules[name] = (int(low), int(high)) if low.isdigit() and high.isdigit() else tuple(rule)
    return rules


RULES = _read()


def bounds(name: str) -> tuple[int, int]:
    low, high = RULES[name]
    return int(low), int(high)


def words(name: str) -> tuple[str, ...]:
    return tuple(str(word) for word in RULES[name])
