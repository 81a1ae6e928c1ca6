#!/bin/sh
# without-docker.sh COMMAND...: run COMMAND with a PATH that has every command
# of this one except docker (each linked into a temporary folder), to show
# that what it runs needs no Docker.
set -eu
shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
IFS=:
for dir in $PATH; do
    [ -d "$dir" ] || continue
    for tool in "$dir"/*; do
        name=${tool##*/}
        case $name in docker|docker-*|dockerd*) continue ;; esac
        [ -x "$tool" ] && [ ! -e "$shadow/$name" ] && ln -s "$tool" "$shadow/$name"
    done
done
unset IFS
PATH=$shadow "$@"
