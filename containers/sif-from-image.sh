#!/bin/sh
# sif-from-image.sh IMAGE.tar OUT.sif: lab.sif by Apptainer's own build, from
# the lab image saved by `docker save` (make-sif.sh, where Apptainer is
# installed). The root file system is the image's, as built; lab.def gives
# what Docker has no words for, so this SIF is the container route's twin:
# %help, %test (`apptainer test`), %runscript, %labels, %environment. Its
# %files and %post are not run: the image already holds their result.
set -eu
archive=$(readlink -f "$1")
out=$2
definition=$(mktemp "${TMPDIR:-/tmp}/lab-from-image.XXXXXX.def")
trap 'rm -f "$definition"' EXIT
{
    printf 'Bootstrap: docker-archive\nFrom: %s\n\n' "$archive"
    awk '/^%/ { keep = ($1 != "%files" && $1 != "%post") } keep' "$(dirname "$0")/lab.def"
} >"$definition"
apptainer build --force "$out" "$definition"
