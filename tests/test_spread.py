"""``spread`` (compiler/build/environments.py), which ``mlplane build --all-envs`` and
``mlplane report`` deal their environments with: whatever a forked worker does (raise, die,
send what cannot be pickled), the results, their order and the exception are those of doing
the work in this process, and no worker is left behind."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from mlplane.compiler.build import environments
from mlplane.compiler.build.environments import spread

pytestmark = pytest.mark.skipif(
    not environments._fork_is_safe(), reason="spread forks only on Linux with one thread"
)
ITEMS = list(range(7))


def _children() -> set[int]:
    """The pids of this process's children still in the process table (zombies included)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == os.getpid():
                found.add(int(entry.name))
    return found


def test_the_results_are_in_item_order_however_many_workers() -> None:
    for workers in (0, 1, 2, 6, 20):
        assert list(spread(ITEMS, workers, lambda n: (n, os.getpid() > 0))) == [
            (n, True) for n in ITEMS
        ]


def test_no_items_give_no_results() -> None:
    assert list(spread([], 2, lambda n: n)) == []


def test_the_work_runs_in_other_processes() -> None:
    pids = set(spread(ITEMS, 2, lambda n: os.getpid()))
    assert os.getpid() in pids and len(pids) == 3


def test_a_worker_that_dies_has_its_items_done_here() -> None:
    parent = os.getpid()

    def work(n: int) -> int:
        if os.getpid() != parent and n == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return n * n

    before = _children()
    assert list(spread(ITEMS, 2, work)) == [n * n for n in ITEMS]
    assert _children() == before


def test_a_result_that_cannot_be_pickled_is_made_here() -> None:
    parent = os.getpid()
    assert list(spread(ITEMS, 2, lambda n: threading.Lock() if os.getpid() != parent else n)) == (
        ITEMS
    )


def test_an_exception_is_the_one_this_process_raises() -> None:
    def work(n: int) -> int:
        if n == 4:
            raise ValueError(f"item {n}")
        return n

    before = _children()
    for workers in (0, 1, 3):
        with pytest.raises(ValueError, match=r"^item 4$"):
            list(spread(ITEMS, workers, work))
    assert _children() == before


def test_an_exception_here_ends_the_workers() -> None:
    parent = os.getpid()

    def work(n: int) -> int:
        if os.getpid() == parent:
            raise RuntimeError("here")
        signal.pause()  # a worker that would never finish on its own
        return n

    before = _children()
    with pytest.raises(RuntimeError, match="here"):
        list(spread(ITEMS, 2, work))
    assert _children() == before
