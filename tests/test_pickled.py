"""The caches' pickling (``compiler/core/pickled.py``): a dataclass whose constructor takes every
field as is is written as a call of its class; any other object as pickle writes it; everything
reads back equal, and the allow-list refuses what it does not name."""

from __future__ import annotations

import collections
import datetime
import io
import pickle
import pickletools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from mlplane.compiler.core import pickled
from mlplane.compiler.core.diagnostics import Location, Related, Severity
from mlplane.compiler.core.graph import Resource, deferred_inputs
from mlplane.compiler.core.ir import Origin

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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


@dataclass(frozen=True, init=False)
class OwnConstructor:
    """A dataclass with a constructor of its own, which does not take its fields as they are."""

    a: int

    def __init__(self, half: int) -> None:
        object.__setattr__(self, "a", 2 * half)


def test_a_dataclass_with_a_constructor_of_its_own_is_pickled_as_usual() -> None:
    data = pickled.dumped(OwnConstructor(2))
    assert data is not None
    assert _ops(data, "BUILD") == 1
    assert pickle.loads(data) == OwnConstructor(2)


def _unpickler_allows(obj: Any) -> bool:
    """Whether the allow-list reads back ``obj`` written by name (a class, a function)."""
    try:
        found = pickled.Unpickler(io.BytesIO(b"")).find_class(obj.__module__, obj.__qualname__)
    except pickle.UnpicklingError:
        return False
    return found is obj


NAMED = [
    Location, Severity, Resource, pickled.read_only, complex, frozenset, dict,  # allowed
    print, One, Colour, collections.OrderedDict, pickled.Unpickler, pickled.value, len,  # not
]  # fmt: skip


@pytest.mark.parametrize("obj", NAMED, ids=lambda o: o.__qualname__)
def test_the_strict_check_of_a_name_is_the_allow_list_s_verdict(obj: Any) -> None:
    allowed = _unpickler_allows(obj)
    if allowed:
        pickled.check_allowed(obj)
    else:
        with pytest.raises(pickle.PicklingError):
            pickled.check_allowed(obj)
    assert allowed is (obj in NAMED[:7])


@pytest.mark.parametrize(
    "value",
    [
        One(1),  # a dataclass outside mlplane: its class is not named by the allow-list
        Colour.RED,  # an enumeration outside mlplane
        collections.OrderedDict(a=1),  # a dict of another class
        [Location("a", 1, 1), ...],  # Ellipsis pickles as a name the allow-list refuses
        {"nested": (1, {"deep": print})},
        _resource({"kind": "ConfigMap", "data": {"when": datetime.date(2026, 1, 1)}}),
        _resource({"kind": "ConfigMap", "data": [One(1)]}),
    ],
    ids=repr,
)
def test_what_the_allow_list_would_refuse_is_not_encoded(value: Any) -> None:
    """``encoded`` refuses, as it writes them, the objects that the allow-list would not read
    back: anywhere in the value, a resource's inputs (pickled apart) included. Pickled without
    the check, each of them is refused when read."""
    assert pickled.encoded(value) is None
    data = pickled.dumped(value)
    assert data is not None
    again = pickled.value(data)
    if isinstance(again, Resource):
        with pytest.raises(RuntimeError, match="do not read back"):
            _ = again.inputs
    else:
        assert again is None


def test_encoding_does_not_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is encoded reads back equal by construction: ``encoded`` never unpickles it."""
    read: list[bytes] = []
    monkeypatch.setattr(pickled, "value", read.append)
    resource = _resource({"kind": "ConfigMap", "data": {"a": [1, 2.5, None, True]}})
    data = pickled.encoded([resource, *VALUES])
    assert data is not None and read == []
    monkeypatch.undo()
    assert pickled.value(data) == [resource, *VALUES]


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_what_is_encoded_from_a_lowering_reads_back_equal(example: str) -> None:
    """Every unit of each example's Kubernetes lowerings, encoded without reading it back,
    reads back equal to it, its resources' inputs included."""
    from mlplane.compiler.build.pipeline import compile_spec
    from mlplane.compiler.core.diagnostics import Diagnostics
    from mlplane.targets.kubernetes.lower import lower
    from mlplane.targets.kubernetes.reuse import Reuse

    compiled = compile_spec(EXAMPLES / example)
    units = 0
    for system in compiled.systems.values():
        if system.environment.target != "kubernetes":
            continue
        reuse = Reuse()
        assert lower(system, Diagnostics(), reuse) is not None
        for unit in reuse.made.values():
            data = pickled.encoded(unit)
            assert data is not None
            again = pickled.value(data)
            assert again == unit
            assert [r.inputs for r in again.resources] == [r.inputs for r in unit.resources]
            units += 1
    assert units
