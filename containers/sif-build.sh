#!/bin/sh
# sif-build OUT.sif DEFFILE: make an Apptainer image (SIF) without Apptainer.
# Runs in the sif-builder image (containers/Dockerfile), as root so that the
# files keep their owners; stdin is the lab image's file system (`docker
# export`). Environment: IMAGE_ENV (the image's ENV, one NAME=value a line),
# IMAGE_LABELS (its labels as JSON), OWNER (uid:gid to give OUT.sif).
#
# What it writes follows what `apptainer build` writes, read in Apptainer's
# source (internal/pkg/build/sources/base_environment.go, conveyorPacker_oci.go,
# internal/pkg/build/assemblers/sif.go; pkg/image/sif.go for what `apptainer
# exec` accepts):
# - /.singularity.d: env/*.sh sourced in name order by every action (01-base,
#   10-docker2singularity with the image's ENV, 90-environment, 95-apps,
#   99-base, 99-runtimevars), actions/{exec,run,shell,start,test}, runscript,
#   startscript, test, runscript.help, labels.json, Singularity (the
#   definition), libs/; the links /.exec /.run /.shell /.test /environment
#   /singularity /apptainer; empty /etc/hosts and /etc/resolv.conf; the mount
#   points /proc /sys /dev /tmp /home /root /var/tmp;
# - the root file system as squashfs, gzip (the compression every Apptainer
#   mounts), in a Partition descriptor: file system Squash, type PrimSys (not
#   System: apptainer only boots a PrimSys), the machine's architecture,
#   group 1; the definition file in a Deffile descriptor before it; the
#   launch script "#!/usr/bin/env run-singularity" in the header.
set -eu
out=${1:?usage: sif-build OUT.sif DEFFILE}
def=${2:?usage: sif-build OUT.sif DEFFILE}
root=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$root" "$work"' EXIT

tar -x --numeric-owner -C "$root" -f -

# The sections of the definition file: %runscript, %test, %help.
section() {
    awk -v want="%$1" '/^%/ { on = ($1 == want); next } on' "$def"
}
script() {  # FILE: a /bin/sh script made of the body on stdin
    { echo '#!/bin/sh'; cat; } >"$1"
    chmod 0755 "$1"
}

d=$root/.singularity.d
mkdir -p "$d/env" "$d/actions" "$d/libs"
for dir in proc sys dev tmp home root var/tmp etc; do mkdir -p "$root/$dir"; done
chmod 1777 "$root/tmp" "$root/var/tmp"
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

# Every action sources the environment scripts in name order, then acts.
env_loop='for script in /.singularity.d/env/*.sh; do [ -f "$script" ] && . "$script"; done'
printf '%s\nexec "$@"\n' "$env_loop" | script "$d/actions/exec"
printf '%s\nif [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript "$@"; fi\nexec /bin/sh "$@"\n' \
    "$env_loop" | script "$d/actions/run"
printf '%s\nif [ -x /.singularity.d/test ]; then exec /.singularity.d/test "$@"; fi\nexec /bin/sh -c true\n' \
    "$env_loop" | script "$d/actions/test"
printf '%s\nif [ -x /bin/bash ]; then exec /bin/bash --norc "$@"; fi\nexec /bin/sh "$@"\n' \
    "$env_loop" | script "$d/actions/shell"
printf 'kill -CONT 1\n%s\nif [ -x /.singularity.d/startscript ]; then exec /.singularity.d/startscript; fi\n' \
    "$env_loop" | script "$d/actions/start"

# Environment scripts: plain POSIX sh (Apptainer runs them in its own
# interpreter, which has no trap, fg or bg).
: | script "$d/env/01-base.sh"
printf '%s\n' "${IMAGE_ENV:-}" | while IFS= read -r line; do
    [ -n "$line" ] || continue
    name=${line%%=*} value=${line#*=}
    # single-quoted, with any ' in the value closed and escaped
    printf "export %s='%s'\n" "$name" "$(printf '%s' "$value" | sed "s/'/'\\\\''/g")"
done | script "$d/env/10-docker2singularity.sh"
# 90-environment.sh holds a definition's %environment; an image built from a
# Docker image (as here, and as `make sif` with Apptainer does) has its
# environment in 10-docker2singularity.sh and this one empty.
: | script "$d/env/90-environment.sh"
: | script "$d/env/95-apps.sh"
script "$d/env/99-base.sh" <<'EOF'
LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/.singularity.d/libs"
export LD_LIBRARY_PATH
EOF
script "$d/env/99-runtimevars.sh" <<'EOF'
if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then PATH="$SING_USER_DEFINED_PREPEND_PATH:$PATH"; fi
if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then PATH="$PATH:$SING_USER_DEFINED_APPEND_PATH"; fi
if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then PATH="$SING_USER_DEFINED_PATH"; fi
unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH
export PATH
EOF

section runscript | script "$d/runscript"
section test | script "$d/test"
: | script "$d/startscript"
section help >"$d/runscript.help"
labels=${IMAGE_LABELS:-}
printf '%s\n' "${labels:-"{}"}" >"$d/labels.json"
cp "$def" "$d/Singularity"
for link in exec run shell test; do ln -sfn ".singularity.d/actions/$link" "$root/.$link"; done
ln -sfn .singularity.d/env/90-environment.sh "$root/environment"
ln -sfn .singularity.d/runscript "$root/singularity"
ln -sfn .singularity.d/runscript "$root/apptainer"

case $(uname -m) in
x86_64) arch=2 ;;
aarch64) arch=4 ;;
*) echo "sif-build: error: no SIF architecture code for $(uname -m)" >&2; exit 1 ;;
esac
mksquashfs "$root" "$work/rootfs.squashfs" -noappend -comp gzip -quiet -no-progress >/dev/null
siftool new "$work/lab.sif"
# Both objects in group 1, as apptainer build puts them: apptainer sign signs
# the group, and verify fails on an object outside it ("non-signature object
# not associated with object group").
siftool add "$work/lab.sif" "$def" --datatype 1 --filename Singularity --groupid 1
siftool add "$work/lab.sif" "$work/rootfs.squashfs" --datatype 4 --partfs 1 --parttype 2 \
    --partarch "$arch" --groupid 1
# The header's launch script, as apptainer build writes it: ./lab.sif runs
# the image's runscript where run-singularity is installed.
printf '#!/usr/bin/env run-singularity\n' | dd of="$work/lab.sif" bs=1 conv=notrunc status=none
[ -z "${OWNER:-}" ] || chown "$OWNER" "$work/lab.sif"
mv "$work/lab.sif" "$out"
