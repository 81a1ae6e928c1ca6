"""The `lab` command: `lab run` (the lesson's study once), `lab study` (a sweep
of schedulers, kernels and workers, saved and plotted), `lab prep` (the
lesson's output blocks for this site), `lab doctor` (is this site ready for the
lesson?), `lab job` (the study as one batch job), `lab lesson PATH` (a dry run
of a whole lesson) and `lab seff JOBID`.

This module parses and dispatches only: every option comes from the table in
lab/spec.py, which also resolves and checks it.

Exit status: 0 done, 1 the run failed (wrong sum, no worker, Slurm error),
2 bad input (nothing was started or submitted), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from . import __version__, config, spec
from .errors import LabError

COMMANDS = {
    "run": ("run the lesson's study once and check its sum",
            "Run the lesson's study: PARTS pure-Python partial sums of range(SIZE), on WORKERS Dask "
            "workers, timing only the compute."),
    "study": ("sweep schedulers, kernels and workers; save, tabulate, plot",
              "Run the study for every scheduler x kernel x worker count, and write results/<run-id>/ "
              "(CSV, JSON, Markdown, PNG)."),
    "prep": ("the lesson's output blocks from this cluster, as Markdown",
             "Regenerate the lesson's output blocks on this cluster: the worker job script, squeue (PD, "
             "then R), compute times, seff for the GIL episode; one Markdown snippet per block in "
             "results/lesson-<id>/."),
    "doctor": ("check that this site is ready for the lesson",
               "Check the Slurm client, partition, account, the worker job's memory and walltime, munge, "
               "and that one worker job starts and connects back. Exit status 1 when a check fails."),
    "job": ("the study as one batch job that needs no Slurm client in the image",
            "Write (and with --submit, submit) one Slurm batch job whose srun starts WORKERS+2 ranks of "
            "`lab run --runner`: scheduler, client and workers of one allocation (dask-jobqueue's "
            "SLURMRunner). Inside Apptainer, or with --sif, every rank runs in the image."),
    "lesson": ("dry-run a lesson's episodes as a learner types them; reports and output blocks",
               "Run each episode of a Carpentries lesson (Jekyll, Liquid-templated, or Workbench) as a learner "
               "types it, time each step, set its output beside the page's, name each failure's cause, and "
               "write a report and the page's output blocks per episode in results/lesson-run-<id>/."),
    "seff": ("CPU and memory efficiency of a finished Slurm job", None),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says what to do."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _help(option: spec.Option) -> str:
    """The option's help, with its default as dask config has it now."""
    value = spec.default(option)
    if option.key is None:
        return option.help
    shown = " ".join(map(str, value)) if isinstance(value, list) else value
    return f"{option.help} (default: {shown if value not in (None, '') else 'none'}, from {option.key})"


def build_parser() -> Parser:
    parser = Parser(prog="lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--site", default=os.environ.get("LAB_SITE") or None,
                        help=f"site profile: {', '.join(config.sites())} or a YAML file (default: $LAB_SITE)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands = {name: sub.add_parser(name, help=short, description=long) for name, (short, long) in COMMANDS.items()}
    for name, command in commands.items():
        for option in spec.options(name):
            command.add_argument(f"--{option.name}", *(["-n"] if option.name == "workers" else []),
                                 nargs="+" if option.many else None, help=_help(option))
    run, job = commands["run"], commands["job"]
    run.add_argument("--show-job-script", action="store_true", help="print the worker job script")
    run.add_argument("--runner", action="store_true",
                     help="be one rank of a job mode run (under srun; `lab job` writes the job)")
    job.add_argument("--sif", help="run every rank in this image (default: the one lab runs in, if any)")
    job.add_argument("--submit", action="store_true", help="submit it with sbatch (else print it)")
    job.add_argument("--wait", action="store_true", help="with --submit: wait for the job, then show its output")
    commands["seff"].add_argument("job", help="Slurm job id")
    lesson = commands["lesson"]
    lesson.add_argument("path", help="the lesson's folder: _episodes/ (Jekyll) or episodes/ (Workbench)")
    lesson.add_argument("--episodes", nargs="+", help="only these episodes (their page names, no .md)")
    lesson.add_argument("--episode-timeout", type=float, default=1800.0,
                        help="seconds an episode may take before its remaining steps are not reached (default: 1800)")
    lesson.add_argument("--snippets", metavar="DIR",
                        help="also write DIR/snippets_library/<cluster>_slurm/: this cluster's values and each "
                             "snippet's output, for a templated lesson to render for this cluster")
    # bin/lab-apptainer's two steps: the steps run in the learner's own shell, outside the image.
    lesson.add_argument("--prepare", metavar="DIR", help=argparse.SUPPRESS)
    lesson.add_argument("--finish", metavar="DIR", help=argparse.SUPPRESS)
    return parser


def dispatch(args) -> int:
    """The command's plan (every input checked before anything starts), then
    the command's module runs it: lab/<command>.py's command()."""
    module = importlib.import_module(f".{args.command}", __package__)
    if args.command == "seff":
        return module.command(args.job)
    return module.command(spec.resolve(args.command, vars(args)), args)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Ctrl-C, kill and a closed terminal all clean up the same way: the
    # run's worker jobs are cancelled. (Set explicitly: a shell starts
    # background commands with SIGINT ignored.)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        if args.site is not None:
            config.use_site(args.site)
        return dispatch(args)
    except LabError as err:  # an expected failure: one line, its status
        print(f"lab {args.command}: error: {err}", file=sys.stderr)
        return err.status
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted; worker jobs cancelled", file=sys.stderr)
        return 130
