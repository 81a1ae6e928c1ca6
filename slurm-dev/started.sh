#!/bin/sh
# started [TIMEOUT]: wait until this container's entrypoint has done its start
# (it writes /run/lab-role then, and removes it first thing: a restarted
# container's marker from its last run does not count). Exit 1 after TIMEOUT
# seconds (default 120). Used by cluster-ready and by `make up` (bin/wait-ready).
set -eu
timeout=${1:-120}
n=0
until [ -s /run/lab-role ]; do
    n=$((n + 1))
    [ "$n" -lt $((timeout * 5)) ] || exit 1
    sleep 0.2
done
