"""lab doctor's checks against stand-in Slurm commands: accounts as sites
name them, and the worker job through sbatch --test-only."""

from __future__ import annotations

import pytest

from lab import doctor
from lab.spec import RunSpec


def spec(**slurm) -> RunSpec:
    return RunSpec("slurm", workers=1, size=1000, parts=1, slurm={"cores": 1, "memory": "256M",
                                                                  "walltime": "00:05:00", **slurm})


@pytest.mark.parametrize("account, says", [
    ("def-prof1", "account 'def-prof1' is valid (def-prof1_cpu, def-prof1_gpu)"),  # as the Alliance names them
    ("def-prof1_cpu", "account 'def-prof1_cpu' is valid"),
    (None, "learner has a default account (def-prof1_cpu, def-prof1_gpu)"),
])
def test_an_account_is_valid_as_the_site_names_its_associations(stand_in, monkeypatch, account, says):
    stand_in("sacctmgr", "printf 'def-prof1_cpu\\ndef-prof1_gpu\\n'")
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    assert doctor.check_account(spec(**({"account": account} if account else {}))) == says


def test_an_account_the_user_has_not_got_fails_with_theirs(stand_in, monkeypatch):
    stand_in("sacctmgr", "printf 'def-prof1_cpu\\n'")
    monkeypatch.setattr("getpass.getuser", lambda: "learner")
    with pytest.raises(doctor.Failed, match=r"account 'def-prof2' is not one of learner's \(def-prof1_cpu\)"):
        doctor.check_account(spec(account="def-prof2"))
    with pytest.raises(doctor.Failed):
        doctor.check_account(spec(account="def-prof"))  # a prefix that is not an account's name


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


def test_a_worker_job_the_site_refuses_fails_in_its_words(stand_in):
    stand_in("sbatch", "cat >/dev/null; echo 'sbatch: error: You must give an account' >&2; "
                       "echo 'sbatch: error: Batch job submission failed: Unspecified error' >&2; exit 1")
    with pytest.raises(doctor.Failed, match="Slurm refuses the worker job: sbatch --test-only failed: sbatch: error: "
                                            "You must give an account / sbatch: error: Batch job submission failed"):
        doctor.check_submit(spec(interface=None))
