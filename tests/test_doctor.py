"""lab doctor's checks against stand-in Slurm commands: accounts as sites
name them, and the worker job through sbatch --test-only."""

from __future__ import annotations

import pytest

from lab import doctor
from lab.spec import RunSpec


def spec(**slurm) -> RunSpec:
    """The lesson's worker job (TLS off: these checks are about its placement)."""
    return RunSpec("slurm", workers=1, size=1000, parts=1, tls=False,
                   slurm={"cores": 1, "memory": "256M", "walltime": "00:05:00", **slurm})


@pytest.mark.parametrize("account, says", [
    ("def-prof1", "account 'def-prof1' is valid (def-prof1_cpu, def-prof1_gpu)"),  # as the Alliance names them
    ("def-prof1_cpu", "account 'def-prof1_cpu' is valid"),
    (None, "learner has a default account (def-prof1_cpu, def-prof1_gpu)"),
])
def test_an_account_is_valid_as_the_site_names_its_associations(stand_in, monkeypatch, account, says):
    monkeypatch.delenv("SBATCH_ACCOUNT", raising=False)
    stand_in("sacctmgr", "printf 'def-prof1_cpu\\ndef-prof1_gpu\\n'")
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    assert doctor.check_account(spec(**({"account": account} if account else {}))) == says


def test_an_account_the_user_has_not_got_fails_with_theirs(stand_in, monkeypatch):
    monkeypatch.delenv("SBATCH_ACCOUNT", raising=False)
    stand_in("sacctmgr", "printf 'def-prof1_cpu\\n'")
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    with pytest.raises(doctor.Failed, match=r"account 'def-prof2' is not one of learner's \(def-prof1_cpu\)"):
        doctor.check_account(spec(account="def-prof2"))
    with pytest.raises(doctor.Failed):
        doctor.check_account(spec(account="def-prof"))  # a prefix that is not an account's name


@pytest.mark.parametrize("account, environment, says", [
    # the learner's .bashrc sets SBATCH_ACCOUNT: sbatch takes it over #SBATCH -A
    (None, "def-prof1", "account 'def-prof1' is valid (def-prof1_cpu, def-prof1_gpu) (SBATCH_ACCOUNT in your "
                        "environment, which sbatch takes over #SBATCH -A)"),
    ("def-prof1_cpu", "def-prof1_gpu", "account 'def-prof1_cpu' is valid; lab's jobs carry it in SBATCH_ACCOUNT, "
                                       "over yours (def-prof1_gpu)"),
    ("def-prof1_cpu", "def-prof1_cpu", "account 'def-prof1_cpu' is valid"),
])
def test_doctor_names_the_account_sbatch_will_really_use(stand_in, monkeypatch, account, environment, says):
    stand_in("sacctmgr", "printf 'def-prof1_cpu\\ndef-prof1_gpu\\n'")
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    monkeypatch.setenv("SBATCH_ACCOUNT", environment)
    assert doctor.check_account(spec(**({"account": account} if account else {}))) == says


def test_an_account_in_the_environment_that_is_not_the_users_fails(stand_in, monkeypatch):
    stand_in("sacctmgr", "printf 'def-prof1_cpu\\n'")
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    monkeypatch.setenv("SBATCH_ACCOUNT", "def-old")
    with pytest.raises(doctor.Failed, match=r"account 'def-old' \(SBATCH_ACCOUNT in your environment.*\) is not "
                                            r"one of learner's \(def-prof1_cpu\)") as err:
        doctor.check_account(spec())
    assert err.value.fix.endswith("or unset SBATCH_ACCOUNT")


def test_the_worker_job_as_lab_writes_it_goes_through_sbatch_test_only(stand_in, tmp_path):
    stand_in("sbatch", f"cat >{tmp_path}/script; echo \"$*\" >{tmp_path}/args; "
                       "echo 'sbatch: Job 7 to start at 2026-11-29T16:00:00 using 1 processors on nodes c1' >&2")
    said = doctor.check_submit(spec(account="def-prof1_cpu", job_extra_directives=["--reservation=workshop"],
                                    interface=None))
    assert said == ("sbatch --test-only accepts the worker job (sbatch: Job 7 to start at 2026-11-29T16:00:00 "
                    "using 1 processors on nodes c1)")
    assert (tmp_path / "args").read_text().strip() == "--test-only"
    script = (tmp_path / "script").read_text()
    assert "#SBATCH -A def-prof1_cpu" in script and "#SBATCH --reservation=workshop" in script


def test_the_job_tested_is_the_one_the_run_submits_tls_and_all(stand_in, tmp_path):
    """doctor's --test-only sees the run's own worker job script: with TLS on,
    its worker command carries the run's credentials (deleted afterwards)."""
    stand_in("sbatch", f"cat >{tmp_path}/script; echo 'sbatch: Job 7 to start at 2026-11-29T16:00:00' >&2")
    folder = tmp_path / "tls"
    run = RunSpec("slurm", workers=1, size=1000, parts=1, tls=True,
                  slurm={"cores": 1, "memory": "256M", "walltime": "00:05:00", "interface": None,
                         "shared_temp_directory": str(folder)})
    doctor.check_submit(run)
    worker = next(x for x in (tmp_path / "script").read_text().splitlines() if "distributed.cli.dask_worker" in x)
    assert " tls://" in worker and f"--tls-ca-file {folder}/" in worker
    assert list(folder.iterdir()) == []


def test_a_worker_job_the_site_refuses_fails_in_its_words(stand_in):
    stand_in("sbatch", "cat >/dev/null; echo 'sbatch: error: You must give an account' >&2; "
                       "echo 'sbatch: error: Batch job submission failed: Unspecified error' >&2; exit 1")
    with pytest.raises(doctor.Failed, match="Slurm refuses the worker job: sbatch --test-only failed: sbatch: error: "
                                            "You must give an account / sbatch: error: Batch job submission failed"):
        doctor.check_submit(spec(interface=None))


def test_a_worker_job_held_off_by_a_reservation_fails_though_sbatch_accepts_it(stand_in):
    """sbatch --test-only takes a job whose nodes a reservation holds, and
    answers a start date far ahead (the reservation's end, or millennia)."""
    stand_in("sbatch", "cat >/dev/null; echo 'sbatch: Job 3 to start at 4068-06-10T22:47:48 using 1 processors "
                       "on nodes compute-2 in partition debug' >&2")
    with pytest.raises(doctor.Failed, match=r"would start it only at 4068-06-10T22:47:48 \(sbatch: Job 3") as err:
        doctor.check_submit(spec(account="def-prof1_cpu", interface=None))
    assert "--reservation" in err.value.fix


def site(stand_in, *, alloc=(0, 0), exclusive=False, assoc="learner|||\n"):
    """Stand-ins of a site of 2 nodes of 2 CPUs and 2048 MB (c1 with `alloc`
    CPUs and MB taken) in partition debug, held by reservation workshop, and
    the associations sacctmgr lists (user|MaxJobs|MaxSubmitJobs|GrpJobs|GrpTRES)."""
    stand_in("sinfo", "case \"$*\" in *%N*) printf 'c1\\nc2\\n' ;; *) echo 'debug*' ;; esac")
    nodes = (f"NodeName=c1 CPUAlloc={alloc[0]} CPUTot=2 RealMemory=2048 AllocMem={alloc[1]} State=MIXED\n"
             "NodeName=c2 CPUAlloc=0 CPUTot=2 RealMemory=2048 AllocMem=0 State=IDLE\n"
             "NodeName=c9 CPUAlloc=0 CPUTot=64 RealMemory=99999 AllocMem=0 State=IDLE\n")  # not ours
    stand_in("scontrol", f"""case "$2" in
        partition) echo 'PartitionName=debug OverSubscribe={"EXCLUSIVE" if exclusive else "NO"} State=UP' ;;
        node) printf '{nodes}' ;;
        reservation) echo 'ReservationName=workshop Nodes=c[1-2] NodeCnt=2 Accounts=def-prof1_cpu' ;;
        hostnames) [ "$3" = 'c[1-2]' ] && printf 'c1\\nc2\\n' ;;
        esac""")
    stand_in("sacctmgr", f"printf '{assoc}'")


def placed(*flags: str) -> RunSpec:
    """The lesson's worker job, placed by an account (and `flags`)."""
    return RunSpec("slurm", workers=1, size=1000, parts=1,
                   slurm={"cores": 1, "memory": "256M", "walltime": "00:05:00"},
                   placement=("--account=def-prof1_cpu", *flags))


def test_a_class_that_fits_now_waits_for_nothing(stand_in, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    site(stand_in)
    assert doctor.check_classroom(placed("--reservation=workshop"), learners=2, workers=2) == (
        "2 learners x 2 worker job(s) of 1 core(s) and 245M fit reservation 'workshop' now: 4 of 4 free job "
        "slots (2 nodes, 4 slots in all); nobody waits")


@pytest.mark.parametrize("options, says", [
    # 8 learners x 1 worker on 4 cores: 4 at once, in 2 rounds
    (dict(), r"8 learners x 1 worker job\(s\) of 1 core\(s\) and 245M do not fit partition 'debug' now "
             r"\(4 free job slots on 2 nodes\): 4 run at once, the other 4 wait .* \(2 rounds"),
    # a node's cores taken by others' jobs: 2 free
    (dict(alloc=(2, 512)), r"\(2 free job slots on 2 nodes\): 2 run at once, the other 6 wait .* \(4 rounds"),
    # whole-node jobs: a job a node
    (dict(exclusive=True), r"245M \(whole nodes\) do not fit .* \(2 free job slots on 2 nodes\): 2 run at once"),
    # the account's limit on all its users together
    (dict(assoc="learner|||\\n||||cpu=3\\n"), r"\(GrpTRES cpu=3\): 3 run at once, the other 5 wait"),
])
def test_a_class_too_big_for_the_site_now_says_who_waits(stand_in, monkeypatch, options, says):
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    site(stand_in, **options)
    with pytest.raises(doctor.Failed, match=says):
        doctor.check_classroom(placed(), learners=8, workers=1)


def test_workers_over_a_learners_job_limit_would_never_start(stand_in, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    site(stand_in, assoc="learner|1|12||\\n")
    with pytest.raises(doctor.Failed, match=r"def-prof1_cpu's MaxJobs=1 per user is less than 2 workers") as err:
        doctor.check_classroom(placed(), learners=1, workers=2)
    assert err.value.fix == "--workers 1 or fewer"


@pytest.mark.parametrize("options, learners, workers, says", [
    # rounds round up: 5 learners, 2 at once -> 3 rounds, not 2
    (dict(alloc=(2, 512)), 5, 1, r"2 run at once, the other 3 wait .* \(3 rounds"),
    # GrpTRES cpu counts every worker of a learner: cpu=3 holds one learner of 2 workers, not 3
    (dict(assoc="learner|||\\n||||cpu=3\\n"), 2, 2, r"\(GrpTRES cpu=3\): 1 run at once, the other 1 wait"),
    # GrpJobs likewise: 3 jobs hold one learner of 2 workers
    (dict(assoc="learner|||\\n|||3|\\n"), 2, 2, r"\(GrpJobs=3\): 1 run at once"),
    # a whole-node partition with a node partly used by someone: that node is not free
    (dict(exclusive=True, alloc=(1, 0)), 2, 1, r"\(1 free job slots on 2 nodes\): 1 run at once"),
    # other jobs' memory: c1's free cores have no memory left for a 245M worker
    (dict(alloc=(0, 1900)), 4, 1, r"\(2 free job slots on 2 nodes\): 2 run at once"),
])
def test_the_classroom_arithmetic(stand_in, monkeypatch, options, learners, workers, says):
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    site(stand_in, **options)
    with pytest.raises(doctor.Failed, match=says):
        doctor.check_classroom(placed(), learners=learners, workers=workers)


def test_per_learner_job_limits_at_and_over_the_bound(stand_in, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    site(stand_in, assoc="learner|2|2||\\n")  # MaxJobs=2, MaxSubmitJobs=2: 2 workers are exactly allowed
    assert "fit partition 'debug' now" in doctor.check_classroom(placed(), learners=1, workers=2)
    site(stand_in, assoc="learner||1||\\n")  # MaxSubmitJobs=1: the second worker job is refused
    with pytest.raises(doctor.Failed, match=r"def-prof1_cpu's MaxSubmitJobs=1 per user is less than 2 workers"):
        doctor.check_classroom(placed(), learners=1, workers=2)


@pytest.mark.parametrize("memory, fits", [("1GiB", True), ("1G", True), ("1.1GiB", False), ("1025M", True),
                                          ("1073M", True), ("1074M", False)])
def test_the_worker_job_fits_a_node_in_slurms_units(stand_in, memory, fits):
    """sinfo's %m is MiB (1024 here): 1GiB fits exactly, dask's 1G (10^9 bytes) too."""
    stand_in("sinfo", "case \"$*\" in *%l*) echo '1:00:00|1024|2' ;; *) echo 'debug*' ;; esac")
    job = spec(memory=memory)
    if fits:
        assert doctor.check_fits(job).startswith(f"1 core(s), {memory}, 00:05:00 fit 'debug'")
    else:
        with pytest.raises(doctor.Failed, match=f"memory {memory} is more than a node of 'debug' has"):
            doctor.check_fits(job)


def test_the_test_only_submission_carries_the_runs_account_over_the_learners(stand_in, tmp_path, monkeypatch):
    monkeypatch.setenv("SBATCH_ACCOUNT", "def-other")
    stand_in("sbatch", f"cat >/dev/null; echo \"$SBATCH_ACCOUNT $SLURM_ACCOUNT\" >{tmp_path}/account; "
                       "echo 'sbatch: Job 7 to start at 2026-11-29T16:00:00' >&2")
    run = RunSpec("slurm", workers=1, size=1000, parts=1, tls=False, placement=("--account=def-prof1_cpu",),
                  slurm={"cores": 1, "memory": "256M", "walltime": "00:05:00", "account": "def-prof1_cpu",
                         "interface": None})
    doctor.check_submit(run)
    assert (tmp_path / "account").read_text().split() == ["def-prof1_cpu", "def-prof1_cpu"]
