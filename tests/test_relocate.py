"""Naming spec files relative to the spec's directory in the output (``outputs._relocated``):
every ``Location.file`` inside frozen dataclasses, tuples and read-only mappings is renamed, a
value with nothing to rename is returned itself, and each kind of dataclass is rebuilt equal to
``dataclasses.replace``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pytest

from mlplane.compiler.build.outputs import _relocated
from mlplane.compiler.core.diagnostics import Location


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    at: Location
    more: tuple[Any, ...] = ()


@dataclass(frozen=True)
class KeywordOnly:
    name: str
    at: Location = field(kw_only=True)


@dataclass(frozen=True)
class Counted:
    at: Location
    count: int = field(init=False, default=0)


def rename(name: str) -> str:
    return name.removeprefix("specs/")


HERE, THERE = Location("specs/a.yaml", 3, 4), Location("specs/b.yaml", 5, 6)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Plain("x", HERE), Plain("x", Location("a.yaml", 3, 4))),
        (
            Plain("x", HERE, (Plain("y", THERE), "z")),
            Plain("x", Location("a.yaml", 3, 4), (Plain("y", Location("b.yaml", 5, 6)), "z")),
        ),
        (KeywordOnly("k", at=HERE), KeywordOnly("k", at=Location("a.yaml", 3, 4))),
        (Counted(HERE), Counted(Location("a.yaml", 3, 4))),
        (
            MappingProxyType({"m": Plain("x", THERE)}),
            MappingProxyType({"m": Plain("x", Location("b.yaml", 5, 6))}),
        ),
    ],
    ids=["plain", "nested", "keyword-only", "field-outside-init", "read-only-mapping"],
)
def test_every_location_is_renamed(value: Any, expected: Any) -> None:
    moved = _relocated(value, rename)
    assert moved == expected
    assert type(moved) is type(expected)


def test_a_value_with_nothing_to_rename_is_itself() -> None:
    value = Plain("x", Location("a.yaml", 1, 1), (Plain("y", Location("b.yaml", 2, 2)),))
    assert _relocated(value, rename) is value


def test_shared_objects_are_copied_once() -> None:
    shared = Plain("s", HERE)
    moved = _relocated((shared, shared, Plain("t", HERE, (shared,))), rename)
    assert moved[0] is moved[1] is moved[2].more[0]
    assert moved[0] == replace(shared, at=Location("a.yaml", 3, 4))
