#!/bin/sh
# The strict site's TaskProlog (the job's user, before each task): what it
# prints as `export NAME=value` is in the task's environment.
echo "export SLURM_TMPDIR=/localscratch/${SLURM_JOB_USER:-$(id -un)}.$SLURM_JOB_ID.0"
