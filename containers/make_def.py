"""Write containers/lab.def, the Apptainer definition, from containers/lab.Dockerfile.

One source of truth: spython converts the Dockerfile (base image, files,
install steps, environment, labels, entry point); this script adds what
Docker has no words for (%help, %test). `make def` runs it; a test fails when
the committed lab.def differs from what it writes (drift).

    python containers/make_def.py [--check]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from spython.main.parse.parsers import DockerParser
from spython.main.parse.writers import SingularityWriter

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "containers" / "lab.Dockerfile"
DEFINITION = ROOT / "containers" / "lab.def"

NOTE = """\
# Apptainer definition of the lab environment. GENERATED from
# containers/lab.Dockerfile by containers/make_def.py (make def): edit those.
# Build from the repository root, after `make wheelhouse`:
#   apptainer build lab.sif containers/lab.def
"""

HELP = """\
%help
    dask-slurm-lab: the Dask lesson's study, on a laptop or on SLURM.
      apptainer test lab.sif                                # does the image work here?
      apptainer exec lab.sif lab run --backend local        # the study on this machine's cores
    On a login node, lab and the lesson's scripts need the host's Slurm
    client inside the image: the wrapper in the image binds it in.
      apptainer exec lab.sif cat /opt/lab/bin/lab-apptainer > lab-apptainer
      chmod +x lab-apptainer
      ./lab-apptainer lab doctor                            # is this site ready?
      ./lab-apptainer lab run --workers 4                   # worker jobs run this image
      ./lab-apptainer python compute-distributed.py         # the lesson's own script
    (LAB_SIF=path/lab.sif when the image is not ./lab.sif.) See the
    project's docs/site.md.
"""

TEST = """\
%test
    lab --version
    lab run --backend local --workers 2 --size 100000 --parts 4
"""


# Docker mounts the wheelhouse for a step (RUN --mount, so no layer keeps it);
# Apptainer has no such thing, and its image is one squashed tree anyway:
# %files copies it in, and the end of %post deletes it.
MOUNT = "RUN --mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse \\\n    "


# Where the wheelhouse is while %post runs (not under /tmp, see render).
BUILD_WHEELHOUSE = "/opt/lab/wheelhouse"


def dockerfile_for_spython() -> str:
    """The Dockerfile with its wheelhouse mounts made a COPY (once) and plain RUNs."""
    text = DOCKERFILE.read_text()
    return text.replace(MOUNT, "COPY wheelhouse/ /tmp/wheelhouse/\nRUN ", 1).replace(MOUNT, "RUN ")


def render() -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile") as converted:
        converted.write(dockerfile_for_spython())
        converted.flush()
        recipe = DockerParser(converted.name, load=True).recipe
    text = SingularityWriter(recipe).convert(runscript="lab")
    # One stage: no Stage line (spython's own parser cannot read it back).
    text = text.replace("Stage: spython-base\n", "")
    # %startscript is for instances (services); the lab is a command.
    text = text.split("%startscript")[0].rstrip() + "\n"
    # Apptainer labels are "KEY VALUE", Docker's KEY="VALUE".
    head, labels = text.split("%labels\n", 1)
    labels, tail = labels.split("%post\n", 1)
    labels = "".join(f"{key} {value.strip(chr(34))}\n" for key, value in
                     (line.split("=", 1) for line in labels.splitlines() if line))
    post, environment = tail.split("\n%environment", 1)
    # %post runs under sh -e, which a failure inside `a && b` does not stop:
    # one command a line, so any failure ends the build where it happens.
    post = post.replace(" \\\n&& ", "\n") + "\nrm -rf /tmp/wheelhouse"
    text = f"{head}%labels\n{labels}%post\n{post}\n%environment{environment}"
    # Apptainer makes a %files destination ending in / and copies the source
    # into it (lab/ would land in .../lab/lab); and while %post runs, the
    # image's /tmp is the build host's: the wheelhouse goes elsewhere.
    head, files = text.split("%files\n", 1)
    files, rest = files.split("%labels\n", 1)
    files = "".join(" ".join(path.rstrip("/") for path in line.split()) + "\n" for line in files.splitlines())
    text = f"{head}%files\n{files}%labels\n{rest}".replace("/tmp/wheelhouse", BUILD_WHEELHOUSE)
    # The Bootstrap header must come first; our note goes right after it.
    header, body = text.split("\n\n", 1)
    return f"{header}\n\n{NOTE}{body}{HELP}{TEST}"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if DEFINITION.read_text() != text:
            print("containers/lab.def differs from containers/lab.Dockerfile: run `make def`",
                  file=sys.stderr)
            return 1
        return 0
    DEFINITION.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
