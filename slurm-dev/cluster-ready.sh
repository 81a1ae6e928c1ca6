#!/usr/bin/env bash
# cluster-ready NODES [TIMEOUT]: wait until this login node has started, the
# accounting database answers, NODES compute nodes are idle, and a test job
# has run on all of them as the lab user. Run on the login node; `make up`
# runs it right after the containers start (the health checks, every 30 s,
# are for watching, not for this).
set -euo pipefail
nodes=${1:?usage: cluster-ready NODES [TIMEOUT]}
timeout=${2:-120}
deadline=$((SECONDS + timeout))
idle=0
started "$timeout" \
    || { echo "error: the login node did not finish starting in ${timeout}s" >&2; exit 1; }
# Compute containers removed by a smaller NODES leave dynamic nodes behind:
# forget every dynamic node whose container (<prefix>compute-<n>, by Docker's
# DNS) is gone. (Its recorded address is an IP, which another container may
# have taken since.)
prefix=$(cat /run/lab-prefix 2>/dev/null || true)
if [ -n "$prefix" ]; then
    for node in $(scontrol show nodes -o 2>/dev/null | grep DYNAMIC | grep -o '^NodeName=[^ ]*' | cut -d= -f2); do
        if ! getent hosts "$prefix$node" >/dev/null; then
            scontrol update nodename="$node" state=down reason="container removed" 2>/dev/null || true
            scontrol delete nodename="$node" 2>/dev/null || true
        fi
    done
fi
# Jobs from before the login node started (cancelled then) whose node
# restarted can stay COMPLETING until slurmctld resends its terminate request,
# a minute later: a node that holds only such jobs is set down and resumed,
# which ends them at once.
clear_orphans() {
    [ -s /run/lab-orphans ] || return 0
    squeue -h -t CG -o '%i %N' 2>/dev/null | while read -r job nodes; do
        grep -qx "$job" /run/lab-orphans || continue
        # only when every job on those nodes is from before the restart
        others=$(squeue -h -w "$nodes" -o %i 2>/dev/null | grep -vxF -f /run/lab-orphans || true)
        [ -z "$others" ] || continue
        echo "ending job $job from before a restart: $nodes set down and resumed" >&2
        scontrol update nodename="$nodes" state=down reason="job $job from before a restart" 2>/dev/null || true
        scontrol update nodename="$nodes" state=resume 2>/dev/null || true
    done
}
strict=${LAB_STRICT:-0}
started=$SECONDS
said=0
while :; do
    ((SECONDS - started < 3)) || clear_orphans
    states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u || true)
    # The plain cluster after the strict site (the controller's state is
    # kept): the workshop reservation would hold every node.
    if [ "$strict" != 1 ] && scontrol show reservation workshop >/dev/null 2>&1; then
        scontrol delete reservation=workshop >/dev/null 2>&1 || true
    fi
    # Exactly idle (on the strict site, idle in its reservation): not
    # drained, not down, no trailing * (not responding).
    idle=$(awk -v strict="$strict" '$2 == "idle" || (strict == 1 && $2 == "resv")' <<<"$states" | wc -l)
    # Accounting answers a query that needs its database (slurmdbd's health check).
    ((idle >= nodes)) && sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1 && break
    # Every 10 s, what is still in the way.
    if (((SECONDS - started) % 10 == 9)) && ((SECONDS != said)); then
        said=$SECONDS
        echo "waiting: $(tr '\n' ' ' <<<"$states")jobs: $(squeue -h -o '%i %t %N' | tr '\n' ' ')" >&2
    fi
    if ((SECONDS >= deadline)); then
        echo "error: only $idle of $nodes compute nodes are idle after ${timeout}s" >&2
        sinfo -N -l >&2 || true
        exit 1
    fi
    sleep 0.5
done
# The strict site: its workshop reservation on every node (made now that
# they are up; dynamic nodes join no reservation by themselves), for the
# workshop's account and the lab's own, whose test job must name both.
placement=()
if [ "$strict" = 1 ]; then
    if scontrol show reservation workshop >/dev/null 2>&1; then
        scontrol update reservation=workshop nodes=ALL >/dev/null
    else
        scontrol create reservation=workshop starttime=now duration=UNLIMITED nodes=ALL \
            accounts=def-prof1_cpu,lab flags=ignore_jobs >/dev/null
    fi
    placement=(--account=lab --reservation=workshop)
fi
out=$(runuser -u learner -- srun --nodes="$nodes" --ntasks-per-node=1 --time=1 "${placement[@]}" \
      --job-name=cluster-ready hostname 2>&1) || {
    echo "error: the test job failed: $out" >&2
    exit 1
}
echo "cluster ready: $idle nodes idle, test job ran on $(sort -u <<<"$out" | wc -l) nodes"
