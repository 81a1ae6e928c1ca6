#!/usr/bin/env bash
# Docker health check for every Slurm role: healthy means usable, not just running.
set -eu
usable='^(idle|mixed|allocated)$'  # exactly: no drain, down, or * (not responding)
case "$(cat /run/lab-role 2>/dev/null)" in
# slurmdbd answers a query that needs the database behind it.
slurmdbd)  sacctmgr -n -P list cluster format=cluster >/dev/null ;;
slurmctld) scontrol ping | grep -q 'is UP' ;;
# A node still completing jobs from before a restart is up too: its slurmd
# answers, and cluster-ready (not a health check that holds compose up --wait
# for slurmctld's minute-long resend) ends such jobs.
slurmd)    sinfo -h -N -n "$(cat /run/lab-node)" -o %T 2>/dev/null | grep -qE "$usable|^completing$" ;;
# At least one compute node the learner can use.
login)     sinfo -h -N -o %T 2>/dev/null | grep -qE "$usable" ;;
*)         exit 1 ;;
esac
