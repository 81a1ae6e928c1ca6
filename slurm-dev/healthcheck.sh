#!/usr/bin/env bash
# Docker health check for every Slurm role: healthy means usable, not just running.
set -eu
usable='^(idle|mixed|allocated)$'  # exactly: no drain, down, or * (not responding)
case "$(cat /run/lab-role 2>/dev/null)" in
# slurmdbd answers a query that needs the database behind it.
slurmdbd)  sacctmgr -n -P list cluster format=cluster >/dev/null ;;
slurmctld) scontrol ping | grep -q 'is UP' ;;
slurmd)    sinfo -h -N -n "$(cat /run/lab-node)" -o %T 2>/dev/null | grep -qE "$usable" ;;
# At least one compute node the learner can use.
login)     sinfo -h -N -o %T 2>/dev/null | grep -qE "$usable" ;;
*)         exit 1 ;;
esac
