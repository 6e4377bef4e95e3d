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


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_DATA, st.integers(min_value=0, max_value=3), st.booleans())
def test_a_text_written_where_it_stands_is_the_value_s_bytes_there(
    value: Any, depth: int, unusual: bool
) -> None:
    """``canonical_text`` at a depth is the top-level text indented to that depth; a fragment
    written for one depth gives the value's bytes where it stands, at that depth as it is, at
    any other depth indented again (also through the fallback writer)."""
    newline = "\n" + depth * canonical.INDENT
    if unusual:
        value = {"x": value, "d": {1: "an int key: the fallback writer runs"}}
    top = canonical.canonical_json(value)[:-1]
    assert canonical.canonical_text(value) == top
    assert canonical.canonical_text(value, newline) == top.replace("\n", newline)
    placed = canonical.Fragment(value, canonical.canonical_text(value, newline), newline)
    document: dict[Any, Any] = {"a": [value, {"b": value}], "c": value}
    written = {"a": [placed, {"b": placed}], "c": placed}
    assert canonical.canonical_json(written) == _expected(document)


def test_a_resource_s_text_is_written_where_resources_json_holds_it() -> None:
    """``resources.json`` joins each resource's text as it is (written for where it stands)."""
    from mlplane.compiler.core.diagnostics import Location
    from mlplane.compiler.core.graph import Resource, ResourceGraph, resource_text
    from mlplane.compiler.core.ir import Origin

    origin = Origin(("models", "m"), Location("mlplane.yaml", 4, 3))
    resources = [
        Resource("kubernetes:core/v1:ConfigMap", name, {"data": {"k": [1, {"v": name}]}}, origin)
        for name in ("a", "b")
    ]
    graph = ResourceGraph.build("dev", "kubernetes", resources)
    text = graph.canonical_json()
    assert text == _expected(json.loads(text))
    for resource in resources:
        assert resource_text(resource) in text
        assert json.loads(resource_text(resource)) == resource.to_json()
