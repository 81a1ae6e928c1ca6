"""The `lab` command: `lab run` (the lesson's study once), `lab study` (a sweep
of schedulers, kernels and workers, saved and plotted), `lab prep` (the
lesson's output blocks for this site), `lab doctor` (is this site ready for the
lesson?) and `lab seff JOBID`.

Exit status: 0 done, 1 the run failed (wrong sum, no worker, Slurm error),
2 bad input (nothing was started or submitted), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__, apptainer, checks, config, slurm, spec
from .errors import BadInput, LabError
from .graph import KERNELS, SCHEDULERS
from .spec import BACKENDS, SLURM_FLAGS


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says what to do."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--site", default=os.environ.get("LAB_SITE") or None,
                        help=f"site profile: {', '.join(config.sites())} or a YAML file "
                        "(default: $LAB_SITE)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="run the lesson's study once and check its sum",
                         description="Run the lesson's study: PARTS pure-Python partial sums "
                         "of range(SIZE), on WORKERS Dask workers, timing only the compute. "
                         "Defaults come from dask config (lab.*, jobqueue.slurm.*).")
    run.add_argument("--workers", "-n", help="Dask workers to start (default: lab.workers)")
    run.add_argument("--size", help="numbers each part sums (default: lab.size, 40000000)")
    run.add_argument("--parts", help="independent parts (default: lab.parts, 4)")
    run.add_argument("--backend", choices=BACKENDS,
                     help="slurm: worker jobs; local: a LocalCluster; auto: slurm when sbatch answers")
    run.add_argument("--worker-timeout", help="seconds to wait for workers (default: lab.worker-timeout)")
    slurm_group = run.add_argument_group("slurm worker jobs (default: dask config jobqueue.slurm.*)")
    slurm_group.add_argument("--cores", help="cores per worker job (lesson: 1)")
    slurm_group.add_argument("--memory", help="memory per worker job, e.g. 256M (lesson)")
    slurm_group.add_argument("--walltime", help="time limit per worker job, e.g. 00:05:00 (lesson)")
    slurm_group.add_argument("--queue", help="partition")
    slurm_group.add_argument("--account", help="Slurm account")
    slurm_group.add_argument("--interface", help="network interface for scheduler and workers, e.g. eth0")
    slurm_group.add_argument("--python", help="worker python command")
    run.add_argument("--show-job-script", action="store_true", help="print the worker job script")
    run.add_argument("--runner", action="store_true",
                     help="be one rank of a job mode run (under srun; `lab job` writes the job)")
    run.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")

    study = sub.add_parser("study", help="sweep schedulers, kernels and workers; save, tabulate, plot",
                           description="Run the study for every scheduler x kernel x worker count, "
                           "and write results/<run-id>/ (CSV, JSON, Markdown, PNG).")
    study.add_argument("--workers", "-n", nargs="+", help="worker counts (default: lab.study.workers, 1 2 4 8)")
    study.add_argument("--schedulers", nargs="+", metavar="S",
                       help=f"of {', '.join(SCHEDULERS)} (default: all; slurm when it answers)")
    study.add_argument("--kernels", nargs="+", metavar="K",
                       help=f"of {', '.join(KERNELS)} (default: lab.study.kernels, both)")
    study.add_argument("--repeat", help="time each point N times on the same workers; the table shows the "
                       "median and its range (default: lab.study.repeat, 3)")
    prep = sub.add_parser("prep", help="the lesson's output blocks from this cluster, as Markdown",
                          description="Regenerate the lesson's output blocks on this cluster: the "
                          "worker job script, squeue (PD, then R), compute times, seff for the GIL "
                          "episode; one Markdown snippet per block in results/lesson-<id>/.")
    prep.add_argument("--workers", "-n", nargs="+",
                      help="worker counts for the compute-time table (default: lab.prep.workers, 1 2 4 8)")
    prep.add_argument("--gil-cpus", nargs="+", help="CPUs of the GIL episode's jobs (default: lab.prep.gil-cpus, "
                      "1 2 4)")
    for sweep in (study, prep):
        sweep.add_argument("--size", help="numbers each part sums (default: lab.size)")
        sweep.add_argument("--parts", help="independent parts (default: lab.parts)")
        sweep.add_argument("--worker-timeout", help="seconds to wait for workers")
        sweep.add_argument("--results", help="folder for results/<run-id>/ (default: lab.results)")
        for name in SLURM_FLAGS:
            sweep.add_argument(f"--{name}", help=f"worker jobs (default: jobqueue.slurm.{name})")

    job = sub.add_parser("job", help="the study as one batch job that needs no Slurm client in the image",
                         description="Write (and with --submit, submit) one Slurm batch job whose srun "
                         "starts WORKERS+2 ranks of `lab run --runner`: scheduler, client and workers of "
                         "one allocation (dask-jobqueue's SLURMRunner). Inside Apptainer, or with --sif, "
                         "every rank runs in the image.")
    job.add_argument("--workers", "-n", help="Dask workers (default: lab.workers)")
    job.add_argument("--size", help="numbers each part sums (default: lab.size)")
    job.add_argument("--parts", help="independent parts (default: lab.parts)")
    job.add_argument("--memory", default="512M", help="memory per rank (default: 512M)")
    job.add_argument("--walltime", default="00:15:00", help="time limit of the job (default: 00:15:00)")
    job.add_argument("--queue", help="partition (default: jobqueue.slurm.queue)")
    job.add_argument("--account", help="Slurm account (default: jobqueue.slurm.account)")
    job.add_argument("--sif", help="run every rank in this image (default: the one lab runs in, if any)")
    job.add_argument("--results", help="folder for the result's JSON (default: lab.results)")
    job.add_argument("--submit", action="store_true", help="submit it with sbatch (else print it)")
    job.add_argument("--wait", action="store_true", help="with --submit: wait for the job, then show its output")

    doctor = sub.add_parser("doctor", help="check that this site is ready for the lesson",
                            description="Check the Slurm client, partition, account, the worker "
                            "job's memory and walltime, munge, and that one worker job starts and "
                            "connects back. Exit status 1 when a check fails.")
    for name in SLURM_FLAGS:
        doctor.add_argument(f"--{name}", help=f"as in lab run (default: jobqueue.slurm.{name})")
    doctor.add_argument("--worker-timeout", help="seconds to wait for the test worker (default: 120)")

    seff = sub.add_parser("seff", help="CPU and memory efficiency of a finished Slurm job")
    seff.add_argument("job", help="Slurm job id")
    return parser


def _json_target(path: str | None) -> None:
    """--json FILE: refused before anything runs when its folder is not writable."""
    if path:
        folder = Path(path).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise BadInput(f"--json: cannot write into {folder}; choose a writable folder")


def _slurm_flags(args) -> dict:
    return {name: getattr(args, name) for name in SLURM_FLAGS}


def _writable_folder(name: str, value: str) -> Path:
    """A folder we may create or write into; checked before any run starts."""
    path = Path(str(value)).expanduser().resolve()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"{name}: cannot write into {path}; choose a writable folder")
    return path


def write_json(path: str, data: dict) -> None:
    """Write atomically: a reader sees the old file or the whole new one."""
    from .results import write_atomic

    write_atomic(Path(path), json.dumps(data, indent=2) + "\n")


def _run_backend(flag) -> str:
    """`lab run`'s scheduler: local or slurm (auto: slurm when sbatch answers)."""
    backend = spec.backend(flag)
    if backend != "local":
        # Only where there is no Slurm client at all, and not inside Apptainer
        # (where one is meant to be bound in), may auto run on this machine.
        problem = slurm.client_problem()
        if problem:
            raise BadInput(f"the Slurm client does not work here: {problem}")
        if problem == "" and (backend == "slurm" or apptainer.image()):
            where = apptainer.missing_client_hint() if apptainer.image() else \
                "run inside the cluster (make run)"
            raise BadInput(f"no Slurm client here (sbatch); {where}; or use --backend local "
                           f"to run on this machine")
        backend = "slurm" if problem is None else "local"
    return backend


def cmd_run(args) -> int:
    _json_target(args.json)
    if args.runner:
        return run_as_rank(args)
    base = spec.resolve("local", workers_flag=args.workers, size=args.size, parts=args.parts,
                        timeout=args.worker_timeout)  # every input checked before the backend is
    scheduler = _run_backend(args.backend)
    options = spec.slurm_options(_slurm_flags(args)) if scheduler == "slurm" else {}
    from .run import run

    result = run(replace(base, scheduler=scheduler, slurm=options), say=lambda text: print(text, flush=True),
                 show_job_script=args.show_job_script)
    return report(args, result)


def report(args, result) -> int:
    """Print a run's result (and --json it); its exit status."""
    from .report import format_run

    print(format_run(result), flush=True)
    if args.json:
        write_json(args.json, result.to_dict())
    if not result.correct:
        print(f"lab run: error: wrong sum {result.total}, expected {result.expected}", file=sys.stderr)
        return 1
    if result.leftover_jobs:
        print(f"lab run: error: worker jobs left in squeue: {' '.join(result.leftover_jobs)}",
              file=sys.stderr)
        return 1
    return 0


def run_as_rank(args) -> int:
    """`lab run --runner`: one rank of a job mode run (see lab/job.py)."""
    if "SLURM_PROCID" not in os.environ:
        raise BadInput("--runner is for the ranks of one srun; `lab job` writes such a job")
    from .job import run_ranks

    ranks = spec.resolve("slurm", size=args.size, parts=args.parts)
    result = run_ranks(ranks.size, ranks.parts, say=lambda text: print(text, flush=True))
    return 0 if result is None else report(args, result)  # None: the scheduler or a worker


def cmd_job(args) -> int:
    from .job import job_script

    ranks = spec.resolve("slurm", workers_flag=args.workers, size=args.size, parts=args.parts)
    options = {"memory": checks.memory("--memory", args.memory),
               "walltime": checks.walltime("--walltime", args.walltime),
               "queue": args.queue or config.slurm("queue"), "account": args.account or config.slurm("account")}
    results = _writable_folder("--results", args.results or config.lab("results"))
    if args.sif and not Path(args.sif).is_file():
        raise BadInput(f"--sif: no image at {args.sif}; build it with make sif")
    # Every rank in an image: --sif, else the one lab runs in, if any.
    sif = str(Path(args.sif).resolve()) if args.sif else apptainer.image()
    script = job_script(ranks.workers, ranks.size, ranks.parts, options, results, sif)
    if not args.submit:
        print(script, end="")
        return 0
    problem = slurm.client_problem()
    if problem is not None:
        raise BadInput(f"--submit needs sbatch: {problem or 'there is none here'}; print the job "
                              f"(leave out --submit) and submit it with the host's sbatch")
    flags = ["--parsable", *(["--wait"] if args.wait else [])]
    job = slurm.run("sbatch", *flags, timeout=24 * 3600 if args.wait else 30, stdin=script).strip()
    job = job.split(";")[0]
    output = Path.cwd() / f"slurm-{job}.out"
    print(f"lab job: submitted job {job}; its output: {output}; its result: {results}/job-{job}.json",
          flush=True)
    if args.wait:
        print(output.read_text() if output.exists() else "(no output file)", end="")
        found = results / f"job-{job}.json"
        return 0 if found.exists() and json.loads(found.read_text())["correct"] else 1
    return 0


def cmd_study(args) -> int:
    counts = spec.worker_counts(args.workers, "study.workers")
    base = spec.resolve("local", workers_flag=counts[0], size=args.size, parts=args.parts,
                        timeout=args.worker_timeout,
                        repeats=checks.whole_number("--repeat", args.repeat or config.lab("study.repeat"), 1, 100))
    results = _writable_folder("--results", args.results or config.lab("results"))
    available = slurm.available()
    schedulers = args.schedulers or [s for s in SCHEDULERS if s != "slurm" or available]
    kernels = args.kernels or list(config.lab("study.kernels"))
    for name, values, known in (("--schedulers", schedulers, SCHEDULERS), ("--kernels", kernels, KERNELS)):
        unknown = [v for v in values if v not in known]
        if unknown:
            raise BadInput(f"{name}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    if "slurm" in schedulers and not available:
        raise BadInput("--schedulers slurm: no SLURM controller answers here; leave it out, "
                       "or run inside the cluster (make study)")
    if "slurm" in schedulers:
        base = replace(base, slurm=spec.slurm_options(_slurm_flags(args)))
    from .sweep import run_sweep

    run_sweep(spec.sweep(base, schedulers, kernels, counts), results)
    return 0


def cmd_prep(args) -> int:
    counts = spec.worker_counts(args.workers, "prep.workers")
    gil = spec.worker_counts(args.gil_cpus, "prep.gil-cpus", name="--gil-cpus", high=64)
    base = spec.resolve("slurm", workers_flag=counts[0], size=args.size, parts=args.parts,
                        timeout=args.worker_timeout)
    results = _writable_folder("--results", args.results or config.lab("results"))
    if not slurm.available():
        raise BadInput("lab prep needs SLURM: run it on the cluster (make lesson)")
    from .prep import prep

    prep(replace(base, slurm=spec.slurm_options(_slurm_flags(args))), counts, gil, results)
    return 0


def cmd_doctor(args) -> int:
    from .doctor import run_checks

    timeout = checks.seconds("--worker-timeout", args.worker_timeout or config.lab("worker-timeout"))
    options = spec.slurm_options(_slurm_flags(args)) if slurm.available() else {}
    return 0 if run_checks(options, timeout, site=args.site, say=print) else 1


def cmd_seff(args) -> int:
    from .seff import efficiency, format_report, query

    job = str(checks.whole_number("JOBID", args.job.split(".")[0], 1))
    print(format_report(efficiency(query(job))))
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.site is not None:
        try:
            config.use_site(args.site)
        except config.UnknownSite as err:
            print(f"lab: error: {err}", file=sys.stderr)
            return err.status
    # Ctrl-C, kill and a closed terminal all clean up the same way: the
    # run's worker jobs are cancelled. (Set explicitly: a shell starts
    # background commands with SIGINT ignored.)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        commands = {"run": cmd_run, "study": cmd_study, "prep": cmd_prep, "doctor": cmd_doctor,
                    "seff": cmd_seff, "job": cmd_job}
        return commands[args.command](args)
    except LabError as err:  # an expected failure: one line, its status
        print(f"lab {args.command}: error: {err}", file=sys.stderr)
        return err.status
    except KeyboardInterrupt:
        print(f"lab {args.command}: interrupted; worker jobs cancelled", file=sys.stderr)
        return 130
