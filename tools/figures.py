"""Write the docs' measured tables from the files the measuring code wrote,
so no figure in the docs is typed by hand:

  build/fault-report.md  (written by tests/test_faults.py)  -> docs/faults.md -> docs/figures.md "faults"
  build/test-times.md    (written by a whole test run)       -> docs/test-times.md -> docs/figures.md "tests"
  bench/results.md       (written by bench/bench.py)         -> docs/figures.md "bench"
  bench/apptainer.md     (written by bench/apptainer.py)     -> README.md "apptainer"
  bench/classroom.md     (written by bench/classroom.py)     -> README.md "classroom"
  docs/study.md          (written by lab study: results.md)  -> docs/instructor.md "study"

`make figures` runs it after `make test` / `make bench`; tests/test_docs.py
checks that the docs hold exactly what these files say.

    python -m tools.figures [--check] [--study results/<run-id>]
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES, INSTRUCTOR, README = ROOT / "docs" / "figures.md", ROOT / "docs" / "instructor.md", ROOT / "README.md"
FAULT_RUN = ROOT / "build" / "fault-report.md"
TEST_RUN = ROOT / "build" / "test-times.md"
SOURCES = {"faults": ROOT / "docs" / "faults.md", "bench": ROOT / "bench" / "results.md",
           "study": ROOT / "docs" / "study.md", "tests": ROOT / "docs" / "test-times.md",
           "apptainer": ROOT / "bench" / "apptainer.md", "classroom": ROOT / "bench" / "classroom.md"}
# The page each table goes into.
PAGES = {"faults": FIGURES, "bench": FIGURES, "tests": FIGURES, "study": INSTRUCTOR, "apptainer": README,
         "classroom": README}


def block(name: str) -> str:
    text = SOURCES[name].read_text()
    if name == "bench":  # the file's own heading becomes a line under the page's
        text = re.sub(r"^# make bench: (.*)\n", r"Last `make bench`: \1.\n", text)
    if name == "study":  # lab study's results.md; its heading is the page's own
        text = re.sub(r"^# dask-slurm-lab study\n", "", text)
    if name == "tests":
        text = re.sub(r"^# make test: (.*)\n", r"Last whole `make test`: \1.\n", text)
    return text.strip()


def render(page: Path) -> str:
    text = page.read_text()
    for name in (name for name, where in PAGES.items() if where == page):
        begin = f"<!-- begin {name}: written by make figures from {SOURCES[name].relative_to(ROOT)} -->"
        end = f"<!-- end {name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise SystemExit(f"figures: {page.relative_to(ROOT)} has no {begin!r} ... {end!r} section")
        section = f"{begin}\n{block(name)}\n{end}"
        text = pattern.sub(lambda _, section=section: section, text)
    return text


def main(argv: list[str]) -> int:
    pages = sorted(set(PAGES.values()))
    if "--check" in argv:
        return 0 if all(render(page) == page.read_text() for page in pages) else 1
    if FAULT_RUN.exists():  # a fresh run of the fault tests
        shutil.copyfile(FAULT_RUN, SOURCES["faults"])
    if TEST_RUN.exists():  # a fresh whole test run
        shutil.copyfile(TEST_RUN, SOURCES["tests"])
    if "--study" in argv:  # a study run's folder becomes the instructor's guide's example
        run = Path(argv[argv.index("--study") + 1])
        shutil.copyfile(run / "results.md", SOURCES["study"])
        shutil.copyfile(run / "study.png", ROOT / "docs" / "study.png")
    for page in pages:
        page.write_text(render(page))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
