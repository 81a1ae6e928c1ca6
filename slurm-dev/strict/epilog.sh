#!/bin/sh
# The strict site's Epilog (root, on the node, after the job): its scratch
# folder goes with it, as on Alliance sites.
[ -n "$SLURM_JOB_ID" ] && [ -n "$SLURM_JOB_USER" ] || exit 0
rm -rf "/localscratch/$SLURM_JOB_USER.$SLURM_JOB_ID.0"
