#!/usr/bin/env bash
# Make sure the pinned Debian base image exists locally.
# A laptop pulls it from the registry; a machine that reaches no registry
# builds the same Debian release with debootstrap from Debian's own packages
# and imports it under the same name, so the Dockerfile never changes.
set -euo pipefail

image=${1:?usage: base-image.sh IMAGE (for example debian:12.12-slim)}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi
if timeout 120 docker pull "$image" >/dev/null 2>&1; then
    echo "base image: pulled $image"
    exit 0
fi

echo "base image: cannot pull $image; building it with debootstrap ($suite from $mirror)"
if ! command -v debootstrap >/dev/null; then
    echo "error: debootstrap is missing; install it (apt-get install -y debootstrap) or make $image pullable" >&2
    exit 1
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    echo "error: debootstrap failed (full log: $rootfs.log)" >&2
    exit 1
}
rm -f "$rootfs.log"
# Keep the image small and free of host state, as the official slim image is.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change "LABEL org.dask-slurm-lab.base=debootstrap-$suite" \
    - "$image" >/dev/null
echo "base image: imported $image"
