"""``yamltext.dump(..., sort_keys=True)`` writes what a key-sorted copy of the data gives (the
Kubernetes manifests rely on it instead of copying every object through ``json``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core import yamltext

_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
_SCALARS |= st.floats(allow_nan=False, allow_infinity=False)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _DATA, max_size=6))
def test_sorted_dump_is_the_dump_of_a_sorted_copy(data: dict[str, Any]) -> None:
    copy = json.loads(json.dumps(data, sort_keys=True))
    assert yamltext.dump(data, sort_keys=True) == yamltext.dump(copy)


def test_sorted_dump_sorts_nested_mappings_and_mappings_in_lists() -> None:
    data = {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": "text"}
    assert (
        yamltext.dump(data, sort_keys=True)
        == "a: text\nb:\n  a:\n    - x: 3\n      'y': 2\n  z: 1\n"
    )
    assert yamltext.dump(data).startswith("b:\n")
