"""Input checks shared by the CLI: each returns the clean value or raises
BadInput with a one-line message that says what to do."""

from __future__ import annotations

import re

from dask.utils import parse_bytes

from .errors import BadInput  # noqa: F401  (the CLI raises checks.BadInput)


def whole_number(name: str, value, low: int = 1, high: int | None = None) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[+]?\d+", text):
        raise BadInput(f"{name} must be a whole number of at least {low} (got {value!r})")
    number = int(text)
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise BadInput(f"{name} must be {bounds} (got {number})")
    return number


def seconds(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number of seconds (got {value!r})") from None
    if not number > 0 or number == float("inf"):
        raise BadInput(f"{name} must be a positive number of seconds (got {value!r})")
    return number


def memory(name: str, value) -> str:
    """A Slurm/dask memory size such as 256M, 2GB or 1GiB."""
    text = str(value).strip()
    try:
        size = parse_bytes(text)
    except (ValueError, TypeError):
        size = 0
    if not re.fullmatch(r"\d+(\.\d+)?\s*[A-Za-z]*", text) or size <= 0:
        raise BadInput(f"{name} must be a memory size such as 256M or 2GB (got {value!r})")
    return text


# Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_WALLTIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")


def walltime(name: str, value) -> str:
    text = str(value).strip()
    if not _WALLTIME.fullmatch(text) or not any(ch not in "0:-" for ch in text):
        raise BadInput(f"{name} must be a Slurm time such as 00:05:00 or 1-00:00:00 (got {value!r})")
    return text
