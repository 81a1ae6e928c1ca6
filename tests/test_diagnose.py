"""Why worker jobs ended, why workers were lost, what pends and why: the
advice each Slurm state gets, from sacct and squeue rows."""

from __future__ import annotations

import pytest

from lab import diagnose
from lab.workers.slurm import pending_note


def rows(*states: tuple[str, str, str, str]) -> list[dict]:
    return [{"JobID": job, "State": state, "ExitCode": code, "WorkDir": folder} for job, state, code, folder in states]


@pytest.mark.parametrize("state, code, folder, says", [
    ("TIMEOUT", "0:0", "/home/learner", "raise --walltime or jobqueue.slurm.walltime"),
    ("OUT_OF_MEMORY", "0:125", "/home/learner", "raise --memory or jobqueue.slurm.memory"),
    ("NODE_FAIL", "0:0", "/home/learner", "their node stopped answering"),
    ("FAILED", "1:0", "/tmp/x", "submitted from /tmp/x, a folder the compute nodes do not share"),
    ("FAILED", "1:0", "/", "submitted from /, a folder the compute nodes do not share"),
    ("FAILED", "127:0", "/home/learner", "the worker command was not found on the compute nodes; set "
                                         "jobqueue.slurm.python to a python the nodes have (now /x/python)"),
    ("FAILED", "1:0", "/home/learner", "see the job's output file"),
    ("CANCELLED by 0", "0:15", "/home/learner", "someone or something cancelled them"),
])
def test_each_end_state_gets_its_advice(state, code, folder, says):
    said = diagnose.ended(rows(("7", state, code, folder)), worker="/x/python")
    assert said.startswith(f"{state.split()[0]} (7; exit code {code}): ") and says in said, said


def test_jobs_are_grouped_by_state_and_a_missing_record_is_said():
    said = diagnose.ended(rows(("7", "TIMEOUT", "0:0", "/h"), ("8", "FAILED", "1:0", "/h"),
                               ("9", "TIMEOUT", "0:0", "/h")), worker="python")
    assert said.startswith("FAILED (8; exit code 1:0): ") and "; TIMEOUT (7 9; exit code 0:0): " in said
    assert diagnose.ended([], worker="python").startswith("accounting has no record of them yet")


def test_lost_workers_name_the_limit_they_hit():
    limits = {"walltime": "00:01:00", "memory": "256M"}
    assert diagnose.lost({"TIMEOUT": ["3", "4"]}, False, limits) == \
        "worker job(s) 3, 4 hit their walltime limit (00:01:00): raise --walltime or jobqueue.slurm.walltime"
    assert diagnose.lost({"OUT_OF_MEMORY": ["5"]}, False, limits) == \
        "worker job(s) 5 ran out of memory (256M): raise --memory or jobqueue.slurm.memory"
    assert diagnose.lost({"CANCELLED": ["6"]}, True, limits) == \
        "workers went over their memory limit (256M) and were restarted until none was left: " \
        "raise --memory or jobqueue.slurm.memory"
    assert diagnose.lost({"CANCELLED": ["6"]}, False, {}) == \
        "all workers were lost (CANCELLED: 6); see squeue, sacct and the worker logs"


def test_pending_note_counts_pending_jobs_and_their_reasons():
    queue = [{"job": "1", "state": "PENDING", "reason": "Resources", "node": ""},
             {"job": "2", "state": "RUNNING", "reason": "None", "node": "compute-1"},
             {"job": "3", "state": "PENDING", "reason": "Priority", "node": ""},
             {"job": "4", "state": "PENDING", "reason": "Resources", "node": ""}]
    assert pending_note(queue) == "3 worker job(s) still pending (reason: Priority, Resources)"
    assert pending_note(queue[1:2]) == ""


@pytest.mark.parametrize("error, piece", [
    ("squeue: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found", "a glibc at least as new"),
    ("sbatch: error while loading shared libraries: libslurmfull.so", "a library the Slurm commands link"),
    ("squeue: error: Unable to contact slurm controller (connect failure)", "the controller"),
    ("squeue: something new", None),
])
def test_a_client_error_names_the_missing_piece(error, piece):
    said = diagnose.client_error(error)
    assert said == "see the message above" if piece is None else said.startswith(f"missing {piece}")
