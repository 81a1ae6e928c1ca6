import pytest

from lab import checks


@pytest.mark.parametrize("value, expected", [("4", 4), (4, 4), ("+2", 2), (" 8 ", 8)])
def test_whole_number_accepts(value, expected):
    assert checks.whole_number("--workers", value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1.5", "1e3", "4 workers", None, "99999"])
def test_whole_number_refuses(value):
    with pytest.raises(checks.BadInput, match="--workers must be"):
        checks.whole_number("--workers", value, 1, 512)


@pytest.mark.parametrize("value", ["256M", "2GB", "1GiB", "512 MB", "100000000"])
def test_memory_accepts(value):
    assert checks.memory("--memory", value) == value


@pytest.mark.parametrize("value", ["", "abc", "-5G", "0", "12XB", "1.2.3G"])
def test_memory_refuses(value):
    with pytest.raises(checks.BadInput, match="memory size such as 256M"):
        checks.memory("--memory", value)


@pytest.mark.parametrize("value", ["00:05:00", "5", "5:00", "1-00:00:00", "2-12", "1-0:30"])
def test_walltime_accepts(value):
    assert checks.walltime("--walltime", value) == value


@pytest.mark.parametrize("value", ["", "abc", "-1", "00:00:00", "0", "5 minutes", "1:2:3:4", "1--2"])
def test_walltime_refuses(value):
    with pytest.raises(checks.BadInput, match="Slurm time such as 00:05:00"):
        checks.walltime("--walltime", value)


@pytest.mark.parametrize("value", ["0", "-3", "abc", "", "inf", "nan"])
def test_seconds_refuses(value):
    with pytest.raises(checks.BadInput, match="seconds"):
        checks.seconds("--worker-timeout", value)
