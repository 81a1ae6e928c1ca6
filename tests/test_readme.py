"""The README tells the truth about the tree: every file it links exists, and
its measured tables are exactly the files the tests and the benchmark wrote."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LINKS = sorted({target for target in re.findall(r"\]\(([^)#\s]+)\)", README)
                if not re.match(r"[a-z]+://", target)})


def test_the_readme_links_files():
    assert len(LINKS) >= 10, LINKS  # the pattern finds the README's links


@pytest.mark.parametrize("target", LINKS)
def test_every_linked_path_exists(target):
    assert (ROOT / target).exists(), f"README links {target}, which does not exist"


def test_measured_tables_are_the_measuring_codes_files():
    done = subprocess.run([sys.executable, "docs/readme_tables.py", "--check"], cwd=ROOT)
    assert done.returncode == 0, "README's tables differ from docs/faults.md / bench/results.md: make readme"
