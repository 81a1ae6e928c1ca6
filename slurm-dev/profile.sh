# shellcheck shell=sh
# The lab's Python (dask, distributed, dask-jobqueue, lab) is the `python`
# of every login shell, and so of every job that srun or sbatch starts.
case ":$PATH:" in
*:/opt/lab/venv/bin:*) ;;
*) export PATH="/opt/lab/venv/bin:$PATH" ;;
esac
