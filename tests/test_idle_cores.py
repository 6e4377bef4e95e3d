"""How many workers a multi-environment build or report forks (``environments.idle_cores``)."""

from __future__ import annotations

import math

import pytest

from mlplane.compiler.build import environments
from mlplane.compiler.build.environments import idle_cores, processes


def test_an_idle_machine_leaves_every_core_but_this_one() -> None:
    assert idle_cores(2, 0.05, 0.5) == 1
    assert idle_cores(8, 0.3, 2.0) == 7


def test_this_process_long_at_work_is_not_read_as_another_load() -> None:
    # a benchmark or report that has computed for minutes holds the 1-minute average near 1
    assert idle_cores(2, 1.2, 600.0) == 1
    # a fresh command at the same load: the load is another process's
    assert idle_cores(2, 1.2, 0.5) == 0


def test_other_work_takes_its_cores() -> None:
    assert idle_cores(2, 2.1, 600.0) == 0  # another process busy on the other core
    assert idle_cores(4, 3.0, 600.0) == 1
    assert idle_cores(4, 9.0, 600.0) == 0


def test_a_lagging_average_is_bounded_by_what_runs_now() -> None:
    # a build ended seconds ago: the average still says 1.3, nothing else runs now
    assert idle_cores(2, 1.3, 0.5, running=0) == 1
    # a test suite on both cores: seen running, and the average agrees
    assert idle_cores(2, 2.0, 0.5, running=2) == 0
    # what runs now never raises the estimate above the average
    assert idle_cores(2, 0.1, 0.5, running=3) == 1


@pytest.mark.parametrize("cores", [1, 2, 3, 16])
@pytest.mark.parametrize("load", [0.0, 0.4, 0.99, 1.5, 7.0, math.inf, math.nan])
@pytest.mark.parametrize("cpu", [0.0, 1.0, 60.0, 1e9])
@pytest.mark.parametrize("running", [None, 0, 1, 5])
def test_never_more_than_the_other_cores_nor_less_than_none(
    cores: int, load: float, cpu: float, running: int | None
) -> None:
    found = idle_cores(cores, load, cpu, running)
    assert 0 <= found <= cores - 1


def test_running_elsewhere_reads_this_machine() -> None:
    found = environments.running_elsewhere()
    if found is None:
        pytest.skip("no /proc/loadavg on this system")
    assert found >= 0


def test_items_that_divide_evenly_get_a_process_per_core() -> None:
    assert processes(4, 1) == 2
    assert processes(6, 2) == 3
    assert processes(2, 3) == 2  # no more processes than items
    assert processes(1, 1) == 1


def test_items_that_would_leave_a_core_idle_get_a_process_each() -> None:
    assert processes(3, 1) == 3  # three environments on two cores: 1.5 builds' time, not 2
    assert processes(5, 3) == 5
    assert processes(11, 7) == 11


def test_no_more_than_half_the_cores_again_and_nothing_to_balance_on_one_core() -> None:
    assert processes(4, 1) == 2  # even: one per core
    assert processes(5, 1) == 2  # beyond half the cores again: one per core
    assert processes(7, 3) == 4
    assert processes(100, 63) == 64  # a process each would hold 1.6 times the memory
    assert processes(3, 0) == 1  # one core: everything here
    assert processes(0, 2) == 1
