import pytest

from lab import slurm
from lab.seff import efficiency, format_report, hms, parse_size


@pytest.mark.parametrize("text, seconds", [
    ("00:11.500", 11.5), ("01:02:03", 3723), ("1-00:00:01", 86401), ("", 0), ("59:00", 3540),
    ("5", 300), ("1-2", 93600), ("1-2:30", 95400), ("UNLIMITED", float("inf")),
])
def test_one_parser_reads_slurm_times_and_durations(text, seconds):
    assert slurm.seconds(text) == seconds


@pytest.mark.parametrize("text, size", [
    ("262144K", 256 * 1024**2), ("256M", 256 * 1024**2), ("2Gn", 2 * 1024**3), ("", 0), ("1024", 1024),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


def row(**fields):
    base = dict(JobID="7", JobName="python", User="learner", Group="learner", State="COMPLETED",
                ExitCode="0:0", AllocCPUS="1", NNodes="1", ElapsedRaw="12", TotalCPU="00:11",
                AllocTRES="billing=1,cpu=1,mem=256M,node=1", MaxRSS="", Cluster="lab")
    base.update(fields)
    return base


def test_the_lessons_gil_episode_numbers():
    # One pure-Python job on 1, 2 and 4 CPUs: 91.67%, ~50%, ~25% efficiency.
    assert efficiency([row()])["cpu_efficiency"] == pytest.approx(91.67, abs=0.01)
    assert efficiency([row(AllocCPUS="2", TotalCPU="00:11", ElapsedRaw="11")])["cpu_efficiency"] == 50
    assert efficiency([row(AllocCPUS="4", TotalCPU="00:11", ElapsedRaw="11")])["cpu_efficiency"] == 25


def test_memory_comes_from_the_largest_step():
    rows = [row(), row(JobID="7.batch", MaxRSS="65536K", AllocTRES="cpu=1,mem=256M,node=1"),
            row(JobID="7.extern", MaxRSS="1024K")]
    eff = efficiency(rows)
    assert eff["max_rss_bytes"] == 64 * 1024**2
    assert eff["memory_efficiency"] == 25.0


def test_report_reads_like_seff():
    text = format_report(efficiency([row(), row(JobID="7.batch", MaxRSS="65536K")]))
    assert "CPU Efficiency: 91.67% of 00:00:12 core-walltime" in text
    assert "Memory Efficiency: 25.00% of 256.00 MB" in text
    assert "State: COMPLETED (exit code 0)" in text


def test_hms():
    assert hms(3723) == "01:02:03" and hms(86401) == "1-00:00:01"


def test_accounting_rows_are_keyed_by_field(tmp_path, monkeypatch):
    from lab import slurm

    fake = tmp_path / "sacct"
    fake.write_text("#!/bin/sh\necho \"$*\" > \"$(dirname \"$0\")/args\"\n"
                    "printf '7|CANCELLED by 1000\\n7.batch|CANCELLED\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    rows = slurm.accounting(["7"], ["JobID", "State"], "-X")
    assert rows == [{"JobID": "7", "State": "CANCELLED by 1000"}, {"JobID": "7.batch", "State": "CANCELLED"}]
    assert (tmp_path / "args").read_text().split() == ["-n", "-P", "-X", "-j", "7", "-o", "JobID,State"]
    assert slurm.accounting([], ["JobID"]) == []


def test_a_rate_limited_controller_is_asked_again(stand_in, tmp_path, monkeypatch):
    """A controller with rl_enable answers "rate limit exceeded": the call
    waits and asks again instead of failing the run."""
    import pytest

    from lab.errors import SlurmError

    stand_in("squeue", f"""n=$(cat {tmp_path}/calls 2>/dev/null || echo 0); echo $((n + 1)) >{tmp_path}/calls
[ "$n" -ge "${{FAILS:-2}}" ] && {{ echo "5|RUNNING|None|compute-1"; exit 0; }}
echo "squeue: error: slurm_load_jobs error: Rate limit exceeded, please retry momentarily" >&2; exit 1""")
    monkeypatch.setattr(slurm, "RATE_LIMITED", (0.01, 0.01, 0.01, None))
    assert slurm.queue(["5"]) == [{"job": "5", "state": "RUNNING", "reason": "None", "node": "compute-1"}]
    assert (tmp_path / "calls").read_text().strip() == "3"
    (tmp_path / "calls").unlink()
    monkeypatch.setenv("FAILS", "9")  # still limited after every wait: Slurm's words, once
    with pytest.raises(SlurmError, match="Rate limit exceeded, please retry momentarily"):
        slurm.queue(["5"])
    assert (tmp_path / "calls").read_text().strip() == "4"


def test_the_pauses_between_rate_limited_calls(stand_in, tmp_path, monkeypatch):
    """1 s, then 2 s, then 4 s: a site's rl_enable refills 2 requests a second."""
    import time
    import types

    import pytest

    from lab.errors import SlurmError

    pauses: list[float] = []  # the module's own sleep (patching time's would catch every thread's)
    monkeypatch.setattr(slurm, "time", types.SimpleNamespace(sleep=pauses.append, monotonic=time.monotonic))
    stand_in("squeue", f"""n=$(cat {tmp_path}/calls 2>/dev/null || echo 0); echo $((n + 1)) >{tmp_path}/calls
[ "$n" -ge "${{FAILS:-2}}" ] && {{ echo "5|RUNNING|None|compute-1"; exit 0; }}
echo "squeue: error: Rate limit exceeded, please retry momentarily" >&2; exit 1""")
    slurm.queue(["5"])
    assert pauses == [1.0, 2.0]
    pauses.clear()
    (tmp_path / "calls").unlink()
    monkeypatch.setenv("FAILS", "9")
    with pytest.raises(SlurmError) as err:
        slurm.queue(["5"])
    assert pauses == [1.0, 2.0, 4.0] and "\n" not in str(err.value)


def test_squeue_is_asked_at_most_every_30_s_once_the_scheduler_counts_workers(monkeypatch):
    """While no worker has connected, squeue every 1, 2, 4 s (a worker job's
    state is all there is); once the scheduler counts one, every 30 s at most."""
    import types

    from lab.workers import slurm as workers_slurm

    clock = [0.0]  # the module's own clock (patching time's would move every thread's)
    monkeypatch.setattr(workers_slurm, "time", types.SimpleNamespace(
        monotonic=lambda: clock[0], sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds)))
    asked: list[float] = []

    def queue(ids):
        asked.append(clock[0])
        return [{"job": job, "state": "PENDING", "reason": "Resources", "node": ""} for job in ids]

    monkeypatch.setattr(workers_slurm.slurm, "queue", queue)
    workers = object.__new__(workers_slurm.SlurmWorkers)
    workers.refused, workers.submitted = [], set()
    workers.connected = lambda: 1 if clock[0] >= 10 else 0  # one of the two connects at 10 s
    workers.current_jobs = lambda: ["7", "8"]
    waited = workers.wait(2, timeout=100, say=lambda text: None)
    assert waited.connected == 1
    import itertools

    import pytest

    before = [t for t in asked if t < 10]  # (the wait's loop ticks every 0.05 s)
    gaps = [b - a for a, b in itertools.pairwise(before)]
    assert gaps[:3] == pytest.approx([1.0, 2.0, 4.0], abs=0.11) and max(gaps) < 4.2
    after = [t for t in asked if t >= 10]
    assert after and all(b - a >= 30 for a, b in itertools.pairwise(after)) and len(after) <= 4
