"""The compiler's pause of the cyclic collector (``pipeline.no_cyclic_gc``): what a pause
leaves behind is frozen, and the next pause makes it collectable again."""

from __future__ import annotations

import gc
import weakref

import pytest

from mlplane.compiler.build import pipeline
from mlplane.compiler.build.pipeline import no_cyclic_gc


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_cycle_dropped_in_a_pause_waits_for_the_freeze_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert gc.isenabled()
    with no_cyclic_gc():
        assert not gc.isenabled()
        node = _Node()
        ref = weakref.ref(node)
        del node
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert ref() is not None  # frozen: the collector does not walk it
    assert pipeline._frozen[0] > 0  # the node, counted as made during the pause
    monkeypatch.setattr(pipeline, "FREEZE_LIMIT", pipeline._frozen[0] - 1)
    with no_cyclic_gc():
        pass
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None


def test_a_nested_pause_leaves_the_collector_paused() -> None:
    with no_cyclic_gc():
        with no_cyclic_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_acyclic_results_are_freed_at_once() -> None:
    with no_cyclic_gc():
        value = {"models": [{"name": str(index)} for index in range(100)]}
        inner = weakref.ref(_Held(value))
    assert inner() is None  # reference counting frees what nothing holds, frozen or not


class _Held:
    def __init__(self, value: object) -> None:
        self.value = value
