"""lab study: metrics, notes, writers, plot, and a small sweep in process."""

import dataclasses
import json
import os
import stat
import statistics

import pytest

from lab import results
from lab.cli import main
from lab.notes import notes
from lab.plot import plot
from lab.results import Row, add_speedups, limit


def row(scheduler="local", kernel="python", workers=1, seconds=8.0, parts=4, cores=2, correct=True, **more):
    return Row(scheduler=scheduler, kernel=kernel, workers_requested=workers, workers_connected=workers,
               parts=parts, size=40_000_000, compute_seconds=seconds, cores_available=cores, correct=correct,
               **more)


@pytest.mark.parametrize("workers, parts, cores, expected", [
    (1, 4, 2, 1), (2, 4, 2, 2), (4, 4, 2, 2), (8, 4, 16, 4), (8, 4, 8, 4), (4, 4, 8, 4), (3, 2, 8, 2),
    (2, 4, 0, 1),  # no core counted (the run's cores unknown): the floor is 1, never 0
])
def test_limit_is_min_of_workers_parts_cores(workers, parts, cores, expected):
    assert limit(workers, parts, cores) == expected


def test_cores_are_counted_per_machine_once_each():
    from lab.results import Placement, cores_available

    def worker(boot, ids):
        return Placement(node="n", job="", user="u", boot=boot, cpus=len(ids), cpu_ids=ids)

    # Four nodes pinned to their own pairs of one host's cores: 8 cores.
    pinned = [worker("a", [0, 1]), worker("a", [2, 3]), worker("a", [4, 5]), worker("a", [6, 7])]
    assert cores_available(pinned, 2) == 8
    # Nodes that share a 2-core host: 2, however many workers.
    assert cores_available([worker("a", [0, 1])] * 8) == 2
    # Two machines; and never more than the workers asked for.
    assert cores_available([worker("a", [0, 1]), worker("b", [0, 1])]) == 2
    assert cores_available([worker("a", [0, 1]), worker("b", [0, 1])], 2) == 4
    assert cores_available([Placement(node="n", job="", user="u", boot="a", cpus=4)] * 2, 2) == 4  # no cpu_ids


def test_speedup_and_efficiency_against_the_one_worker_run():
    rows = add_speedups([row(workers=1, seconds=12.33, cores=16), row(workers=2, seconds=6.07, cores=16),
                         row(workers=4, seconds=3.45, cores=16), row(workers=8, seconds=3.38, cores=16),
                         row(scheduler="threads", workers=2, seconds=5)])
    by = {(r.scheduler, r.workers_requested): r for r in rows}
    assert by["local", 2].speedup == pytest.approx(2.031, abs=1e-3)
    assert by["local", 4].efficiency == pytest.approx(12.33 / 3.45 / 4)
    assert by["local", 8].ideal_speedup == 4  # only 4 parts
    assert by["threads", 2].speedup is None  # no 1-worker run to compare with


def test_a_wrong_sum_is_no_baseline_for_a_speedup():
    """A 1-worker run that computed a wrong sum (a C int overflowing) is fast
    for a wrong reason: nothing is compared with it."""
    rows = add_speedups([row(workers=1, seconds=0.1, correct=False), row(workers=2, seconds=6.0)])
    assert [r.speedup for r in rows] == [None, None] and rows[1].efficiency is None


def test_a_new_run_folder_never_reuses_one_even_under_the_same_token(tmp_path, monkeypatch):
    from lab import results

    tokens = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(results.secrets, "token_hex", lambda n: next(tokens))
    monkeypatch.setattr(results.time, "strftime", lambda fmt: "20261205-090000")
    first = results.new_run_dir(tmp_path, prefix="x-")
    (first / "kept").write_text("a result")
    second = results.new_run_dir(tmp_path, prefix="x-")
    assert (first.name, second.name) == ("x-20261205-090000-aaaa", "x-20261205-090000-bbbb")
    assert (first / "kept").read_text() == "a result"


def test_notes_explain_the_lessons_numbers_in_the_lessons_order():
    rows = add_speedups([
        row(workers=1, seconds=12.33, cores=2), row(workers=4, seconds=3.45, cores=2),
        row(workers=8, seconds=3.38, cores=2),
        row("threads", workers=1, seconds=11.63), row("threads", workers=4, seconds=11.24),
        row("threads", "numpy", workers=1, seconds=1.0), row("threads", "numpy", workers=2, seconds=0.55),
        row("slurm", workers=4, seconds=3.6, cores=2),
        row("processes", workers=2, seconds=1, correct=False),
    ])
    rows[0].compute_min, rows[0].compute_max = 12.1, 12.5
    said = notes(rows)
    text = "\n".join(said)
    assert "WRONG SUM with processes/python at 2 workers" in said[0]
    assert "threads do not speed up the pure-Python kernel (1.03x at 4 workers: 11.24 s against 11.63 s " \
        "at 1): the GIL" in said[1]
    assert "threads do speed up the NumPy kernel (1.82x at 2 workers: 0.55 s against 1.00 s at 1): " \
        "NumPy releases the GIL" in said[2]
    assert "LocalCluster workers do speed up the pure-Python kernel (3.65x at 8 workers: 3.38 s against " \
        "12.33 s (12.10-12.50) at 1)" in said[3]
    assert "more than 4 workers are no faster than 4: there are only 4 parts (local/python)" in said[4]
    assert "only 2 CPU cores here: speedup cannot pass 2" in said[5]
    assert "SLURM workers took 1.04x the compute time of local workers at 4 workers" in said[6]
    assert "UNEXPECTED" not in text


def test_a_result_against_the_lesson_is_flagged_unexpected():
    """Processes slower than threads on pure Python: the table the study used to show."""
    rows = add_speedups([row("threads", workers=1, seconds=2.27), row("threads", workers=2, seconds=2.57),
                         row("processes", workers=1, seconds=2.64), row("processes", workers=2, seconds=2.95)])
    said = notes(rows)
    assert said[0].startswith("threads do not speed up the pure-Python kernel")
    assert said[1].startswith("UNEXPECTED: processes did not speed up the pure-Python kernel (0.89x at 2 "
                              "workers: 2.95 s against 2.64 s at 1); likely cause:")


def test_a_difference_is_called_one_only_beyond_the_spread():
    local = row(workers=2, seconds=4.0, compute_min=3.8, compute_max=4.4)
    close = row("slurm", workers=2, seconds=4.3, compute_min=4.1, compute_max=4.6)
    slower = row("slurm", workers=2, seconds=5.0, compute_min=4.8, compute_max=5.2)
    said = notes(add_speedups([local, close]))
    assert not any("took" in note and "x the compute time" in note for note in said)
    assert "SLURM and local workers took the same compute time within the spread of the repeats at " \
        "2 (python) workers" in said
    said = notes(add_speedups([local, slower]))
    assert "SLURM workers took 1.25x the compute time of local workers at 2 workers (python): 5.00 s " \
        "(4.80-5.20) against 4.00 s (3.80-4.40)" in said


def test_processes_that_do_not_speed_up_are_said_so():
    said = notes(add_speedups([row("processes", workers=1, seconds=2.6),
                               row("processes", workers=2, seconds=2.9)]))
    assert "UNEXPECTED: processes did not speed up the pure-Python kernel (0.90x at 2 workers" \
        in "\n".join(said)
    said = notes(add_speedups([row("processes", workers=1, seconds=2.6),
                               row("processes", workers=2, seconds=1.4)]))
    assert said == ["processes do speed up the pure-Python kernel (1.86x at 2 workers: 1.40 s against 2.60 s "
                    "at 1): each worker is a process with a GIL of its own"]


def test_processes_run_the_parts_in_as_many_processes_as_workers():
    """The processes scheduler's parts spread over its pool (dask would batch
    them into one process), on a pool started before the clock."""
    import time

    import dask

    from lab.spec import RunSpec
    from lab.workers import open_workers

    def part(_):  # cloudpickled into the pool's processes
        time.sleep(0.5)
        return os.getpid()

    graph = dask.delayed(set)([dask.delayed(part)(i) for i in range(4)])
    with open_workers(RunSpec("processes", workers=2, size=10, parts=4)) as workers:
        workers.scale(2)
        started = {p.pid for p in workers.pool._processes.values()}
        assert len(started) == 2  # both started, warmed, before any compute
        assert workers.compute(graph) == started


def test_csv_and_json_round_trip(tmp_path):
    rows = add_speedups([row(workers=1), row(workers=2, seconds=4.0)])
    rows = [dataclasses.replace(r, run_id="x", nodes="compute-1;compute-2", job_ids="3;4", compute_times=[1.0])
            for r in rows]
    results.save(tmp_path, rows, "# table\n")
    assert results.load(tmp_path) == rows
    back = results.load_csv(tmp_path)
    assert [r["workers_requested"] for r in back] == ["1", "2"]
    assert back[1]["speedup"] == "2.0" and back[1]["nodes"] == "compute-1;compute-2"
    # The CSV is the table a spreadsheet reads: one value a cell, none of the
    # JSON's lists, dicts or totals.
    assert {"scheduler", "kernel", "workers_requested", "compute_seconds", "compute_min", "compute_max",
            "speedup", "cpu_efficiency", "dask", "date"} <= set(back[0])
    assert not {"compute_times", "phases", "total", "expected", "startup_seconds"} & set(back[0])
    assert not any("[" in value or "{" in value for r in back for value in r.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json", "results.md"]
    # Results are for others to read, not secrets (mkstemp makes 0600).
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in tmp_path.iterdir())


def test_rows_from_an_older_or_newer_lab_load_without_unknown_keys(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps([{**dataclasses.asdict(row()), "gone_field": 1}]))
    (loaded,) = results.load(tmp_path)
    assert loaded == row() and not hasattr(loaded, "gone_field")


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    made = {results.new_run_dir(tmp_path) for _ in range(20)}
    assert len(made) == 20 and all(p.is_dir() and not any(p.iterdir()) for p in made)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    results.write_atomic(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        results.write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_plot_has_a_panel_per_kernel_with_ranges_ideal_and_limit(tmp_path):
    rows = add_speedups([row(workers=w, seconds=8 / min(w, 2)) for w in (1, 2, 4)]
                        + [row("threads", workers=w, seconds=8) for w in (1, 2, 4)]
                        + [row("threads", "numpy", workers=w, seconds=2 / min(w, 2)) for w in (1, 2, 4)])
    rows[1].compute_min, rows[1].compute_max = 3.5, 4.75  # local / python at 2 workers: its range
    fig = plot(rows, tmp_path / "study.png")
    assert (tmp_path / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    python_time, numpy_time, python_speed, numpy_speed = fig.axes[:4]  # the lesson's kernel first
    assert python_time.get_title() == "Compute time: python kernel"
    assert numpy_speed.get_title() == "Speedup: numpy kernel"
    assert [c.get_label() for c in python_time.containers] == ["threads", "local"]  # the lesson's order
    assert [c.get_label() for c in numpy_time.containers] == ["threads"]
    bars = python_time.containers[1].lines[2][0].get_segments()  # local's error bars
    assert [tuple(s[:, 1]) for s in bars][1] == (3.5, 4.75)
    labels = [line.get_label() for line in python_speed.get_lines()]
    assert labels[:2] == ["threads", "local"]
    assert "ideal (= workers)" in labels and "limit min(workers, parts=4, cores=2)" in labels
    limit_line = python_speed.get_lines()[labels.index("limit min(workers, parts=4, cores=2)")]
    assert list(limit_line.get_ydata()) == [1, 2, 2]
    (legend,) = fig.legends  # one, below the panels: no panel has one over its data
    assert not any(ax.get_legend() for ax in fig.axes)
    assert [t.get_text() for t in legend.get_texts()][:2] == ["threads", "local"]
    # threads are one colour in both kernels' panels
    assert numpy_time.containers[0].lines[0].get_color() == python_time.containers[0].lines[0].get_color()


def test_a_small_sweep_writes_every_file(tmp_path, capsys):
    status = main(["study", "--schedulers", "synchronous", "threads", "local", "--kernels", "python",
                   "numpy", "--workers", "1", "2", "--size", "20000", "--results", str(tmp_path)])
    assert status == 0
    (run_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "results.csv", "results.json", "results.md", "study.png"]
    rows = json.loads((run_dir / "results.json").read_text())
    # synchronous runs once per kernel; threads and local at 1 and 2 workers.
    assert len(rows) == 2 + 2 * 2 * 2
    assert all(r["correct"] and r["run_id"] == run_dir.name for r in rows)
    assert {r["scheduler"] for r in rows} == {"synchronous", "threads", "local"}
    assert all(r["dask"] and r["python"] and r["host_cores"] for r in rows)
    # Each point timed 3 times on the same workers (the default): the median and its range.
    assert all(r["repeats"] == 3 and len(r["compute_times"]) == 3 for r in rows)
    assert all((r["compute_seconds"], r["compute_min"], r["compute_max"]) ==
               (statistics.median(r["compute_times"]), min(r["compute_times"]), max(r["compute_times"]))
               for r in rows)
    assert any(r["compute_min"] < r["compute_max"] for r in rows)  # the repeats really are three runs
    # Each kernel sized for itself, and the size is in the row.
    assert {(r["kernel"], r["size"]) for r in rows} == {("python", 20000), ("numpy", 2000000)}
    assert "| scheduler | kernel | size | workers | connected | compute (s) | range (s) |" \
        in (run_dir / "results.md").read_text()
    out = capsys.readouterr().out
    assert "compute (s)" in out and f"results: {run_dir}" in out


@pytest.mark.parametrize("argv, says", [
    (["study", "--workers", "1", "0"], "--workers must be from 1 to 512 (got 0)"),
    (["study", "--workers"], "expected at least one argument"),
    (["study", "--schedulers", "mpi"], "--schedulers: unknown mpi"),
    (["study", "--kernels", "cython"], "--kernels: unknown cython"),
    (["study", "--repeat", "0"], "--repeat must be from 1 to 100 (got 0)"),
    (["study", "--results", "/etc/hostname/results"], "--results: cannot write into /etc/hostname/results"),
    (["study", "--schedulers", "slurm"], "lab study --schedulers slurm needs SLURM: no Slurm client here"),
    (["prep"], "lab prep needs SLURM"),
])
def test_study_bad_input_is_one_line_and_writes_nothing(argv, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lab.slurm.client_problem", lambda: "")  # no sbatch here
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_repeats_report_a_wrong_total_even_when_other_repeats_are_right():
    from lab.graph import expected_sum
    from lab.run import time_repeats

    answers = iter([expected_sum(100, 2), 42, expected_sum(100, 2)])
    times, total = time_repeats(3, 100, 2, "python", lambda graph: next(answers))
    assert len(times) == 3
    assert total == 42  # one wrong repeat makes the point wrong
    times, total = time_repeats(2, 100, 2, "python", lambda graph: graph.compute(scheduler="sync"))
    assert total == expected_sum(100, 2)


def test_study_where_there_is_no_matplotlib_says_where_to_run_it(capsys, tmp_path, monkeypatch):
    """The compute nodes' image has no matplotlib: a study there stops before any run or folder."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "matplotlib" else
                        find_spec(name, *a))
    assert main(["study", "--schedulers", "threads", "--workers", "1", "--size", "1000",
                 "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no matplotlib" in err and "run lab study on the login node" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_timer_counts_the_compute_alone(monkeypatch):
    """Building the graph (0.5 s here) is not the compute's time (0.1 s)."""
    import time

    import lab.run
    from lab.graph import expected_sum

    def slow_build(size, parts, kernel):
        time.sleep(0.5)
        return None

    def compute(graph):
        time.sleep(0.1)
        return expected_sum(100, 2)

    monkeypatch.setattr(lab.run, "build_graph", slow_build)
    times, total = lab.run.time_repeats(2, 100, 2, "python", compute)
    assert total == expected_sum(100, 2) and all(0.09 < t < 0.35 for t in times), times


def test_threads_that_speed_up_pure_python_are_flagged_unexpected():
    said = notes(add_speedups([row("threads", workers=1, seconds=8.0), row("threads", workers=2, seconds=4.1)]))
    assert said[0].startswith("UNEXPECTED: threads sped up the pure-Python kernel (1.95x at 2 workers")


def test_a_command_that_fails_before_writing_leaves_no_results_folder(tmp_path):
    """A refused first job: no empty results/<run-id>/ left; a folder with
    what was measured before the failure stays."""
    from lab import results

    with pytest.raises(RuntimeError), results.new_results(tmp_path) as folder:
        raise RuntimeError("sbatch refused the worker job")
    assert not folder.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), results.new_results(tmp_path, prefix="lesson-") as folder:
        (folder / "results.json").write_text("[]")
        raise KeyboardInterrupt
    assert (folder / "results.json").exists()
