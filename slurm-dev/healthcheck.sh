#!/usr/bin/env bash
# Docker health check for every Slurm role: healthy means usable, not just running.
set -eu
case "$(cat /run/lab-role 2>/dev/null)" in
slurmdbd)  (exec 3<>/dev/tcp/localhost/6819) 2>/dev/null ;;
slurmctld) scontrol ping | grep -q 'is UP' ;;
slurmd)    scontrol show node "$(cat /run/lab-node)" 2>/dev/null | grep -qE 'State=(IDLE|MIXED|ALLOCATED|COMPLETING)' ;;
login)     sinfo -h >/dev/null ;;
*)         exit 1 ;;
esac
