"""Input checks of the option table (lab/spec.py): each takes the flag's name
and a value, and returns the clean value or raises BadInput with one line
that says what to do."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dask.utils import parse_bytes

from .errors import BadInput


def whole_number(name: str, value, low: int = 1, high: int | None = None) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[+]?\d+", text):
        raise BadInput(f"{name} must be a whole number of at least {low} (got {value!r})")
    number = int(text)
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise BadInput(f"{name} must be {bounds} (got {number})")
    return number


def whole(low: int, high: int) -> Callable[[str, Any], int]:
    """The check of a whole number from low to high."""
    return lambda name, value: whole_number(name, value, low, high)


def seconds(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a number of seconds (got {value!r})") from None
    if not number > 0 or number == float("inf"):
        raise BadInput(f"{name} must be a positive number of seconds (got {value!r})")
    return number


def memory(name: str, value) -> str:
    """A memory size in dask's notation, as SLURMCluster takes it (the lesson's
    "256M"; M is 10^6 bytes there, MiB 2^20): dask-jobqueue writes it into
    the worker job's --mem in Slurm's units itself."""
    text = str(value).strip()
    try:
        size = parse_bytes(text)
    except (ValueError, TypeError):
        size = 0
    if not re.fullmatch(r"\d+(\.\d+)?\s*[A-Za-z]*", text) or size <= 0:
        raise BadInput(f"{name} must be a memory size such as 256M or 2GB (got {value!r})")
    return text


# The units Slurm takes after a memory number (--mem, --mem-per-cpu): K, M, G, T.
_SLURM_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?", re.IGNORECASE)


def slurm_memory(name: str, value) -> str:
    """A memory size for an sbatch directive, as Slurm reads it: its units are
    powers of 1024 (with or without B or iB; a bare number is megabytes),
    written in whole mebibytes, which sbatch takes (1GiB -> 1024M, 0.5G -> 512M)."""
    text = str(value).strip()
    match = _SLURM_MEMORY.fullmatch(text)
    size = parse_bytes(f"{match.group(1)}{(match.group(2) or 'M').upper()}iB") if match else 0
    if size < 1024**2:
        raise BadInput(f"{name} must be a memory size of at least 1M, such as 256M, 2G or 1.5GB "
                       f"(got {value!r})")
    return f"{-(-size // 1024**2)}M"  # rounded up: never less than asked


# Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_WALLTIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")


def walltime(name: str, value) -> str:
    text = str(value).strip()
    if not _WALLTIME.fullmatch(text) or not any(ch not in "0:-" for ch in text):
        raise BadInput(f"{name} must be a Slurm time such as 00:05:00 or 1-00:00:00 (got {value!r})")
    return text


def slurm_name(name: str, value) -> str:
    """A partition, account, reservation or QOS name: Slurm's names are words
    (letters, digits, - _ . and +), so a value is never sbatch or shell text."""
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", text):
        raise BadInput(f"{name} must be a Slurm name of letters, digits, -, _, . or + (got {value!r})")
    return text


def interface(name: str, value) -> str:
    """A network interface this machine has (the scheduler listens on it)."""
    text = str(value).strip()
    known = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
    if known and text not in known:
        raise BadInput(f"{name}: this machine has no network interface {text!r}; choose one of "
                       f"{', '.join(known)} (ip -br addr), one the compute nodes reach")
    return text


def text(name: str, value) -> str:
    return str(value)


def writable_folder(name: str, value) -> Path:
    """A folder we may create or write into; checked before any run starts."""
    path = Path(str(value)).expanduser().resolve()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: cannot write into {path}; choose a writable folder")
    return path


def writable_file(name: str, value) -> Path:
    """A file to write, in a folder that exists and is writable."""
    path = Path(str(value)).expanduser().resolve()
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: cannot write into {path.parent}; choose a writable folder")
    return path


def one_of(choices) -> Callable[[str, Any], str]:
    def check(name: str, value) -> str:
        if value not in choices:
            raise BadInput(f"{name}: unknown {value}; choose from {', '.join(choices)}")
        return str(value)
    return check
