"""The canonical JSON writer gives exactly ``json.dumps(indent=2, sort_keys=True)``'s bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core.canonical import canonical_json

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


def reference(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_the_bytes_are_json_dumps_bytes(value: Any) -> None:
    assert canonical_json(value) == reference(value)


def test_tuples_nesting_and_unusual_values_match() -> None:
    value = {"b": (1, [2.5, float("inf"), -0.0]), "a": {"x": {}, "y": []}, "c": 'é\u2028"\\'}
    assert canonical_json(value) == reference(value)
    odd = {2: "int keys", 1: True}  # left to json.dumps, which converts the keys
    assert canonical_json(odd) == reference(odd)
    with pytest.raises(TypeError):  # as json.dumps: mixed keys do not sort
        canonical_json({1: "a", "b": 2})
