#!/bin/sh
# make-sif.sh OUT.sif: lab.sif from the built lab image, on any machine with
# Docker: with `apptainer build` where Apptainer is installed
# (containers/sif-from-image.sh), else in the sif-builder container
# (containers/sif-build.sh), which needs no Apptainer (LAB_SIF_BUILDER=container
# takes that way even where Apptainer is). Both give lab.def's %help and %test.
set -eu
out=${1:-lab.sif}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' lab/__init__.py)
image=dask-slurm-lab/lab:$version
mkdir -p build

if [ "${LAB_SIF_BUILDER:-}" != container ] && command -v apptainer >/dev/null 2>&1; then
    docker save "$image" -o build/lab-image.tar
    trap 'rm -f build/lab-image.tar' EXIT
    containers/sif-from-image.sh build/lab-image.tar "$out"
    exit 0
fi

echo "sif: building $out in a container (squashfs-tools, siftool; no apptainer needed)"
docker build -q --target sif-builder --build-arg LAB_IMAGE="$image" -t "dask-slurm-lab/sif-builder:$version" \
    -f containers/Dockerfile . >/dev/null
container=$(docker create "$image")
trap 'docker rm -f "$container" >/dev/null' EXIT
env_list=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$image")
labels=$(docker image inspect -f '{{json .Config.Labels}}' "$image")
docker export "$container" | docker run --rm -i --network none \
    -e IMAGE_ENV="$env_list" -e IMAGE_LABELS="$labels" -e OWNER="$(id -u):$(id -g)" \
    -v "$PWD/build:/out" -v "$PWD/containers/lab.def:/lab.def:ro" \
    "dask-slurm-lab/sif-builder:$version" /out/lab.sif.tmp /lab.def
mv build/lab.sif.tmp "$out"
echo "sif: $out ($(du -h "$out" | cut -f1)) from $image"
