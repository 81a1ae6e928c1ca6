#!/bin/sh
# Make sure the pinned Debian base image exists locally.
# A laptop pulls it from the registry; a machine that reaches no registry
# builds the same Debian release with debootstrap from Debian's own packages
# and imports it under the same name, so the Dockerfile never changes.
# Only a pull that failed because no registry answered leads to debootstrap.
set -eu

image=${1:?usage: base-image.sh IMAGE (for example debian:12.12-slim)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fail() { echo "base image: error: $*" >&2; exit 2; }
# The Debian release the tag names (debootstrap wants its code name).
case $image in
    debian:12*) named=bookworm ;;
    debian:13*) named=trixie ;;
    *) named="" ;;
esac
suite=${DEBIAN_SUITE:-$named}
[ -n "$suite" ] || fail "no code name known for $image: set DEBIAN_SUITE (for example DEBIAN_SUITE=trixie)"

if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi
# A pull that hangs is no answer either (GNU timeout where there is one: macOS has none).
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 120"
if pulled=$($limit docker pull "$image" 2>&1); then
    echo "base image: pulled $image"
    exit 0
fi
case $pulled in
*"manifest unknown"*|*"not found"*|*"pull access denied"*|*"unauthorized"*)
    fail "the registry answered but has no $image ($(printf '%s' "$pulled" | tail -n 1)); check the FROM line of containers/lab.Dockerfile" ;;
esac
reason=$(printf '%s' "$pulled" | tail -n 1)
echo "base image: no registry answers (${reason:-the pull timed out}); building $image with debootstrap ($suite from $mirror)"
command -v debootstrap >/dev/null 2>&1 \
    || fail "debootstrap is missing: install it (apt-get install -y debootstrap), or let this machine reach Docker's registry"
[ "$(id -u)" = 0 ] || fail "debootstrap needs root: run make as root once (sudo make build), or let this machine reach Docker's registry"
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 20 "$rootfs.log" >&2
    echo "base image: error: debootstrap failed (log above)" >&2
    exit 1
}
# Keep the image small and free of host state, as the official slim image is:
# no documentation, manual pages or translations, now or from later installs
# (the slim image's dpkg excludes), and no package caches.
printf 'path-exclude /usr/share/%s/*\n' doc man groff info lintian linda locale \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
echo 'path-include /usr/share/doc/*/copyright' >>"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
# Files only: a package's install script may expect the folders (man1...).
find "${rootfs:?}/usr/share/doc" ! -name copyright ! -type d -delete
for folder in man groff info lintian linda locale; do
    [ ! -d "${rootfs:?}/usr/share/$folder" ] || find "${rootfs:?}/usr/share/$folder" ! -type d -delete
done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change "LABEL org.dask-slurm-lab.base=debootstrap-$suite" \
    - "$image" >/dev/null
echo "base image: imported $image"
