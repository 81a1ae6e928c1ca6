#!/bin/sh
# The strict site's Prolog (root, on the node, before the job's first step):
# each job's node-local scratch folder, $SLURM_TMPDIR, as Alliance sites give
# one: /localscratch/<user>.<job>.0, the job's user's alone.
[ -n "$SLURM_JOB_ID" ] && [ -n "$SLURM_JOB_USER" ] && [ -n "$SLURM_JOB_UID" ] || exit 0
exec install -d -o "$SLURM_JOB_UID" -m 0700 "/localscratch/$SLURM_JOB_USER.$SLURM_JOB_ID.0"
