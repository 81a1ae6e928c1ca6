"""The README and docs/ tell the truth about the tree: every file they link
exists, the README's first screen has the three quick starts, and the
measured tables are exactly the files the tests and the benchmark wrote."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKS = sorted({(page.relative_to(ROOT).as_posix(), target) for page in PAGES
                for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", page.read_text())
                if not re.match(r"[a-z]+://", target)})


def test_the_pages_link_files():
    assert len({page for page, _ in LINKS}) >= 5 and len(LINKS) >= 30, LINKS  # the pattern finds the links


@pytest.mark.parametrize("page, target", LINKS)
def test_every_linked_path_exists(page, target):
    assert (ROOT / page).parent.joinpath(target).exists(), f"{page} links {target}, which does not exist"


def test_the_readme_is_short_and_opens_with_three_quick_starts():
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    for who, command in (("Learners", "make run WORKERS=4"), ("Instructors", "make lesson"),
                         ("Site staff", "lab-apptainer lab doctor")):
        assert f"**{who}**" in first_screen and command in first_screen, who
    assert len(readme.splitlines()) <= 160


def test_the_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make test               # unit tests, then the cluster tests" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_measured_tables_are_the_measuring_codes_files():
    done = subprocess.run([sys.executable, "-m", "tools.figures", "--check"], cwd=ROOT)
    assert done.returncode == 0, "docs' tables differ from docs/faults.md / bench/results.md: make figures"
