#!/usr/bin/env bash
# cancel-jobs [REASON [WAIT]]: cancel every job in the cluster and wait up to
# WAIT seconds (30) until Slurm has let them go, so accounting records them as CANCELLED (not NODE_FAIL
# after their nodes are stopped). Run as root on the login node: by `make
# down`, and by the login node at its start (jobs from before it started have
# lost their client: lab run, the lesson's script).
set -uo pipefail
reason=${1:-}
wait=${2:-30}
jobs=$(squeue -h -o %i 2>/dev/null | sort -u)
[ -n "$jobs" ] || exit 0
# shellcheck disable=SC2086  # one job id per word
echo "cancelling $(wc -w <<<"$jobs") job(s)${reason:+ ($reason)}: $(tr '\n' ' ' <<<"$jobs")" >&2
# shellcheck disable=SC2086
scancel $jobs 2>/dev/null
deadline=$((SECONDS + wait))
while ((wait > 0)) && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; do
    if ((SECONDS >= deadline)); then
        echo "warning: jobs still in squeue after ${wait}s: $(squeue -h -o '%i %T' | tr '\n' ' ')" >&2
        exit 0
    fi
    sleep 0.2
done
