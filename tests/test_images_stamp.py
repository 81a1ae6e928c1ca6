"""containers/images-stamp: the fingerprint `make images` compares with its
last good build. No Docker needed: a stand-in `docker` answers for the ids."""

from __future__ import annotations

import shutil
import subprocess

from tools.cluster import ROOT

# docker image inspect -f {{.Id}} IMAGE: an id for the lab's images, none for others.
FAKE_DOCKER = """case "$5" in
dask-slurm-lab/*) echo "sha256:$(printf %s "$5" | cksum | cut -d' ' -f1)" ;;
*) exit 1 ;;
esac"""


def test_make_images_builds_again_exactly_when_a_source_changed(tmp_path, stand_in):
    """Any byte of a file the builds read changes the fingerprint (lab/,
    slurm-dev/, the wheelhouse, an executable bit); a touch or a byte-compiled
    file does not; and it names each image's id, or "missing"."""
    tree = tmp_path / "lab"
    for name in ("containers", "lab", "slurm-dev"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("compose.yaml", ".dockerignore", "requirements.lock", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    (tree / "wheelhouse").mkdir()
    (tree / "wheelhouse" / "dask-1.0-py3-none-any.whl").write_bytes(b"wheel")
    stand_in("docker", FAKE_DOCKER)

    def stamp(*images: str) -> str:
        return subprocess.run([str(tree / "containers" / "images-stamp"), *images], capture_output=True,
                              text=True, check=True).stdout

    before = stamp()
    (tree / "lab" / "graph.py").touch()
    (tree / "lab" / "__pycache__").mkdir()
    (tree / "lab" / "__pycache__" / "graph.cpython-313.pyc").write_bytes(b"compiled")
    assert stamp() == before
    changes = [lambda: (tree / "lab" / "graph.py").write_text((tree / "lab" / "graph.py").read_text() + "\n"),
               lambda: (tree / "slurm-dev" / "slurm.conf").write_text(
                   (tree / "slurm-dev" / "slurm.conf").read_text() + "# changed\n"),
               lambda: (tree / "wheelhouse" / "numpy-2.0-cp313-none-any.whl").write_bytes(b"another wheel"),
               lambda: (tree / "slurm-dev" / "slurm.conf").chmod(0o755)]
    seen = {before}
    for change in changes:
        change()
        now = stamp()
        assert now not in seen, change
        seen.add(now)
    lines = stamp("dask-slurm-lab/lab:0", "other/no-such:0").splitlines()
    assert lines[1].startswith("dask-slurm-lab/lab:0 sha256:") and lines[2] == "other/no-such:0 missing"
