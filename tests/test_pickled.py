"""The caches' pickling (``compiler/core/pickled.py``): a dataclass whose constructor takes every
field as is is written as a call of its class; any other object as pickle writes it; everything
reads back equal, and the allow-list refuses what it does not name."""

from __future__ import annotations

import pickle
import pickletools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

import pytest

from mlplane.compiler.core import pickled
from mlplane.compiler.core.diagnostics import Location, Related, Severity
from mlplane.compiler.core.graph import Resource, deferred_inputs
from mlplane.compiler.core.ir import Origin


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True, slots=True)
class One:
    value: Any


@dataclass(frozen=True)
class Several:
    a: Any
    b: Any = None
    c: tuple[Any, ...] = ()


@dataclass
class Derived:
    """Not built by its constructor alone: pickled as a state to set."""

    a: int
    twice: int = field(init=False)

    def __post_init__(self) -> None:
        self.twice = 2 * self.a


@dataclass(frozen=True)
class Hidden:
    a: int
    b: int = field(init=False, default=7)


class Colour(Enum):
    RED = "red"


VALUES = [
    Location("mlplane.yaml", 3, 7),
    [Location("mlplane.yaml", 3, 7), Location("mlplane.yaml", 3, 7)],
    Related(Location("b.yaml", 1, 1), "the other one"),
    {"read only": MappingProxyType({"x": (Location("a", 1, 2),)}), "set": frozenset({1, 2})},
    Severity.ERROR,
    [1, 2.5, None, True, "text", b"bytes", (), {}],
]
"""Values of mlplane's own types, which the allow-list reads back."""


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_what_is_pickled_reads_back_equal(value: Any) -> None:
    data = pickled.encoded(value)
    assert data is not None
    assert pickled.value(data) == value


def _ops(data: bytes, name: str) -> int:
    """How many times the pickle runs the opcode ``name`` (REDUCE: call a class with arguments;
    BUILD: set an object's state)."""
    return sum(op.name == name for op, _, _ in pickletools.genops(data))


@pytest.mark.parametrize(
    "value",
    [Empty(), One(1), One(One("x")), Several("a", {"k": [1]}, (Colour.RED,))],
    ids=repr,
)
def test_a_plain_dataclass_is_written_as_a_call_of_its_class(value: Any) -> None:
    data = pickled.dumped(value)
    assert data is not None
    assert _ops(data, "BUILD") == 0
    assert _ops(data, "REDUCE") >= 1
    assert pickle.loads(data) == value


@pytest.mark.parametrize("value", [Derived(3), Hidden(1)], ids=repr)
def test_a_dataclass_its_constructor_does_not_rebuild_is_pickled_as_usual(value: Any) -> None:
    data = pickled.dumped(value)
    assert data is not None
    assert _ops(data, "BUILD") == 1
    assert pickle.loads(data) == value


def test_a_class_itself_is_pickled_by_name() -> None:
    data = pickled.dumped(Location)
    assert data is not None
    assert _ops(data, "REDUCE") == 0
    assert pickled.value(data) is Location


def test_what_the_allow_list_does_not_name_is_refused() -> None:
    assert pickled.value(pickle.dumps(print)) is None  # a builtin function
    assert pickled.value(pickle.dumps(One(1))) is None  # a class outside mlplane
    assert pickled.value(b"not a pickle") is None


def _resource(inputs: Mapping[str, Any]) -> Resource:
    origin = Origin(("models", "scorer"), Location("mlplane.yaml", 3, 7))
    return Resource("kubernetes:core/v1:ConfigMap", "scorer-config", inputs, origin, "root")


def test_a_resource_s_inputs_are_pickled_apart_and_read_when_first_read() -> None:
    inputs = {"kind": "ConfigMap", "data": {"a": [1, 2.5, None, True]}}
    resource = _resource(inputs)
    data = pickled.encoded((resource, resource))
    assert data is not None
    again = pickled.value(data)
    assert isinstance(again, tuple) and again[0] is again[1]
    held = deferred_inputs(again[0])
    assert isinstance(held, pickled.PickledInputs)
    assert pickled.dumped(again) == data  # the same bytes again, the inputs never read
    assert deferred_inputs(again[0]) is held
    assert again[0] == resource and deferred_inputs(again[0]) is None
    assert again[0].inputs == inputs and again[0].needs() == ("root",)


def test_inputs_that_are_read_only_or_refused_are_stored_or_not_stored() -> None:
    """Inputs holding read-only mappings are pickled by :data:`pickled.DISPATCH`; inputs the
    allow-list refuses make the unit unstored (``encoded`` gives None), never an error."""
    frozen = _resource(MappingProxyType({"kind": "ConfigMap", "data": MappingProxyType({})}))
    data = pickled.encoded(frozen)
    assert data is not None and pickled.value(data) == frozen
    assert pickled.encoded(_resource({"kind": "ConfigMap", "call": print})) is None


def test_inputs_that_do_not_read_back_stop_the_reader() -> None:
    data = pickled.encoded(_resource({"kind": "ConfigMap"}))
    assert data is not None
    again = pickled.value(data)
    assert isinstance(again, Resource)
    object.__setattr__(again, "inputs", pickled.PickledInputs(pickle.dumps(print)))
    with pytest.raises(RuntimeError, match="do not read back"):
        _ = again.inputs


def loaded_inputs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each resource's inputs unpickled from now on (``PickledInputs.load``)."""
    loaded: list[int] = []
    original = pickled.PickledInputs.load

    def spy(self: pickled.PickledInputs) -> Any:
        loaded.append(len(self.data))
        return original(self)

    monkeypatch.setattr(pickled.PickledInputs, "load", spy)
    return loaded
