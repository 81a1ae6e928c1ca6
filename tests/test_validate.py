import pytest

from lab import validate as checks
from lab.errors import BadInput


@pytest.mark.parametrize("value, expected", [("4", 4), (4, 4), ("+2", 2), (" 8 ", 8)])
def test_whole_number_accepts(value, expected):
    assert checks.whole_number("--workers", value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1.5", "1e3", "4 workers", None, "99999"])
def test_whole_number_refuses(value):
    with pytest.raises(BadInput, match="--workers must be"):
        checks.whole_number("--workers", value, 1, 512)


@pytest.mark.parametrize("value", ["256M", "2GB", "1GiB", "512 MB", "100000000"])
def test_memory_accepts_what_slurmcluster_takes(value):
    assert checks.memory("--memory", value) == value


@pytest.mark.parametrize("value", ["", "abc", "-5G", "0", "12XB", "1.2.3G"])
def test_memory_refuses(value):
    with pytest.raises(BadInput, match="memory size such as 256M"):
        checks.memory("--memory", value)


# What Slurm takes (--mem, --mem-per-cpu): whole mebibytes; K, M, G, T are
# powers of 1024 there, with or without B or iB; a bare number is megabytes.
@pytest.mark.parametrize("value, slurm", [("256M", "256M"), ("2GB", "2048M"), ("1GiB", "1024M"),
                                          ("512 MB", "512M"), ("0.5G", "512M"), ("1.5g", "1536M"),
                                          ("100", "100M"), ("1T", "1048576M"), ("1500K", "2M")])
def test_slurm_memory_is_written_as_sbatch_takes_it(value, slurm):
    assert checks.slurm_memory("--memory", value) == slurm


@pytest.mark.parametrize("value", ["", "abc", "-5G", "0", "12XB", "1.2.3G", "512K", "2 G B", "1e3M"])
def test_slurm_memory_refuses(value):
    with pytest.raises(BadInput, match="memory size of at least 1M, such as 256M"):
        checks.slurm_memory("--memory", value)


@pytest.mark.parametrize("value", ["00:05:00", "5", "5:00", "1-00:00:00", "2-12", "1-0:30"])
def test_walltime_accepts(value):
    assert checks.walltime("--walltime", value) == value


@pytest.mark.parametrize("value", ["", "abc", "-1", "00:00:00", "0", "5 minutes", "1:2:3:4", "1--2"])
def test_walltime_refuses(value):
    with pytest.raises(BadInput, match="Slurm time such as 00:05:00"):
        checks.walltime("--walltime", value)


@pytest.mark.parametrize("value", ["0", "-3", "abc", "", "inf", "nan"])
def test_seconds_refuses(value):
    with pytest.raises(BadInput, match="seconds"):
        checks.seconds("--worker-timeout", value)


@pytest.mark.parametrize("value", ["def-prof1_cpu", "workshop", "normal", "cpubase_bycore_b1", "a.b+c"])
def test_slurm_names_accept(value):
    assert checks.slurm_name("--account", value) == value


@pytest.mark.parametrize("value", ["", "-x", "a b", "a;rm -rf", "$(id)", "a\nb", "x,y"])
def test_slurm_names_refuse_what_is_not_a_name(value):
    with pytest.raises(BadInput, match="--account must be a Slurm name"):
        checks.slurm_name("--account", value)


def test_an_interface_this_machine_lacks_is_one_line_naming_those_it_has():
    import os

    known = sorted(os.listdir("/sys/class/net"))
    assert checks.interface("--interface", known[0]) == known[0]
    with pytest.raises(BadInput, match=f"no network interface 'nosuch0'; choose one of {known[0]}"):
        checks.interface("--interface", "nosuch0")
