#!/usr/bin/env bash
# node-cores NUMBER CPUS: the host cores compute node NUMBER is pinned to, as
# taskset's list: the CPUS cores after node NUMBER-1's, wrapping around the
# cores this container may use (or, with a third argument -, the core ids
# read from stdin, one a line).
set -euo pipefail
number=${1:?usage: node-cores NUMBER CPUS} cpus=${2:?usage: node-cores NUMBER CPUS}
if [ "${3:-}" = - ]; then
    mapfile -t cores
else
    mapfile -t cores < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)), sep="\n")')
fi
list=""
for ((i = 0; i < cpus && i < ${#cores[@]}; i++)); do
    list+="${list:+,}${cores[((number - 1) * cpus + i) % ${#cores[@]}]}"
done
echo "$list"
