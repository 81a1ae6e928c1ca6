"""Write the README's measured tables from the files the measuring code wrote,
so no figure in the README is typed by hand:

  build/fault-report.md  (written by tests/test_faults.py)  -> docs/faults.md -> README "faults"
  build/test-times.md    (written by a whole test run)       -> docs/test-times.md -> README "tests"
  bench/results.md       (written by bench/bench.py)         -> README "bench"
  docs/study.md          (written by lab study: results.md)  -> README "study"

`make readme` runs it after `make test` / `make bench`; tests/test_readme.py
checks that the README holds exactly what these files say.

    python docs/readme_tables.py [--check] [--study results/<run-id>]
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FAULT_RUN = ROOT / "build" / "fault-report.md"
TEST_RUN = ROOT / "build" / "test-times.md"
SOURCES = {"faults": ROOT / "docs" / "faults.md", "bench": ROOT / "bench" / "results.md",
           "study": ROOT / "docs" / "study.md", "tests": ROOT / "docs" / "test-times.md"}


def block(name: str) -> str:
    text = SOURCES[name].read_text()
    if name == "bench":  # the file's own heading becomes a line under the README's
        text = re.sub(r"^# make bench: (.*)\n", r"Last `make bench`: \1.\n", text)
    if name == "study":  # lab study's results.md; its heading is the README's own
        text = re.sub(r"^# dask-slurm-lab study\n", "", text)
    if name == "tests":
        text = re.sub(r"^# make test: (.*)\n", r"Last whole `make test`: \1.\n", text)
    return text.strip()


def render(readme: str) -> str:
    for name in SOURCES:
        begin = f"<!-- begin {name}: written by make readme from {SOURCES[name].relative_to(ROOT)} -->"
        end = f"<!-- end {name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(readme):
            raise SystemExit(f"readme_tables: README.md has no {begin!r} ... {end!r} section")
        section = f"{begin}\n{block(name)}\n{end}"
        readme = pattern.sub(lambda _, section=section: section, readme)
    return readme


def main(argv: list[str]) -> int:
    if "--check" in argv:
        return 0 if render(README.read_text()) == README.read_text() else 1
    if FAULT_RUN.exists():  # a fresh run of the fault tests
        shutil.copyfile(FAULT_RUN, SOURCES["faults"])
    if TEST_RUN.exists():  # a fresh whole test run
        shutil.copyfile(TEST_RUN, SOURCES["tests"])
    if "--study" in argv:  # a study run's folder becomes the README's example
        run = Path(argv[argv.index("--study") + 1])
        shutil.copyfile(run / "results.md", SOURCES["study"])
        shutil.copyfile(run / "study.png", ROOT / "docs" / "study.png")
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
