#!/bin/sh
# seff JOBID: CPU and memory efficiency of a finished job (Debian 12 has no seff).
exec /opt/lab/venv/bin/lab seff "$@"
