"""A shared fragment writes the bytes of the value it stands for, at any depth, also when the
document falls back to ``json.dumps`` (a value the fast writer leaves to it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core import canonical

_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_SCALARS |= st.floats(allow_nan=False, allow_infinity=False)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)


def _expected(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_DATA, st.booleans())
def test_fragments_write_the_value_at_every_depth(value: Any, unusual: bool) -> None:
    document: dict[Any, Any] = {"a": [value, {"b": value}], "c": value}
    if unusual:
        document["d"] = {1: "an int key: the fallback writer runs"}
    with canonical.shared_fragments():
        shared = canonical.fragment(value)
        assert canonical.fragment(value) is shared
        texts = canonical.canonical_json({**document, "a": [shared, {"b": shared}], "c": shared})
    assert texts == _expected(document)


def test_fragments_are_remembered_only_inside_the_block() -> None:
    value = {"spec": [1, 2]}
    assert not canonical.sharing()
    assert canonical.fragment(value) is not canonical.fragment(value)
    with canonical.shared_fragments():
        assert canonical.sharing()
        assert canonical.fragment(value) is canonical.fragment(value)
    assert not canonical.sharing()
