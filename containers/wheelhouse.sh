#!/bin/sh
# Download every locked Python package, as wheels for the image's Python and
# CPU, into ./wheelhouse. Images install from it with no network access, so a
# build node without internet (or a container that cannot verify PyPI's TLS)
# can still build, and every build gets the exact same bytes (--require-hashes).
set -eu
lock=${1:-requirements.lock}
dest=${2:-wheelhouse}
# The engine's CPU (Docker Desktop on a Mac may differ from uname), else this machine's.
# A docker info that fails still prints an empty line: use it only when it answers.
arch=${WHEEL_ARCH:-}
[ -n "$arch" ] || arch=$(docker info --format '{{.Architecture}}' 2>/dev/null) || arch=$(uname -m)
case "$arch" in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) echo "error: no wheels for CPU '$arch'; set WHEEL_ARCH to x86_64 or aarch64" >&2; exit 1 ;;
esac
python=$("$(dirname "$0")/image-python")
# The lock's hash by python3 (macOS has no sha256sum).
digest=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$lock")
stamp="$dest/.stamp-cp$python-$arch-$digest"
[ -e "$stamp" ] && exit 0
# A new lock: start empty, so no stale wheel reaches an image.
rm -rf "$dest"
mkdir -p "$dest"
# --no-deps: the lock lists every package already, and this host's Python
# would read the packages' own markers (python_version < "3.12") for itself.
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --require-hashes -r "$lock" --dest "$dest" \
    --only-binary=:all: --implementation cp --python-version "$python" \
    --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" \
    --platform "manylinux2014_$arch" --platform "linux_$arch"
rm -f "$dest"/.stamp-*
touch "$stamp"
echo "wheelhouse: $(ls "$dest"/*.whl | wc -l) wheels for CPython $python/$arch in $dest"
