"""The marker questions of ``targets/pulumi_literals.py``: inside a build ``has_marker`` and
``secret_keys`` share one remembered walk per value (``_markers``), which must answer exactly
what ``has_marker``'s own walk and a plain recursive reading of the secret markers answer, for
any nesting of markers. A build walks each input once for the graph's references
(``graph.walk``, kept by ``graph.remembered_walks``), and the printer's questions take that walk:
the answers, and the error a malformed marker gives, are the same as from the printer's own."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core import canonical
from mlplane.compiler.core.graph import (
    JSON_MARKER,
    OUTPUT_KEY,
    REF_MARKER,
    SECRET_MARKER,
    GraphError,
    Resource,
    references,
    remembered_walks,
    walk,
)
from mlplane.compiler.core.ir import Origin
from mlplane.targets import pulumi_literals
from mlplane.targets.pulumi_literals import LiteralError, has_marker, secret_keys

_KEYS = st.sampled_from(["a", "b", "spec", "metadata", "x-y"])
_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4))
_SECRET = st.builds(lambda key: {SECRET_MARKER: key}, st.sampled_from(["db-pass", "token.1"]))
_REF = st.builds(lambda name: {REF_MARKER: name, OUTPUT_KEY: "arn"}, st.sampled_from(["b", "k"]))


def _with_json(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_KEYS, children, max_size=4),
        st.builds(lambda inner: {JSON_MARKER: inner}, children),
    )


VALUES = st.recursive(st.one_of(_SCALAR, _SECRET, _REF), _with_json, max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, VALUES, max_size=4))
def test_the_shared_walk_answers_as_each_walk_alone(inputs: dict[str, Any]) -> None:
    alone = ([pulumi_literals._has_marker(v) for v in inputs.values()], _secrets(inputs))
    assert secret_keys(inputs) == alone[1]  # outside a build: one walk of its own
    with canonical.shared_fragments():
        shared = ([has_marker(v) for v in inputs.values()], secret_keys(inputs))
        again = ([has_marker(v) for v in inputs.values()], secret_keys(inputs))  # remembered
    assert shared == alone == again


def test_a_malformed_secret_marker_is_refused_in_a_build() -> None:
    value = {"spec": {"password": {SECRET_MARKER: "has space"}}}
    with canonical.shared_fragments(), pytest.raises(LiteralError):
        secret_keys(value)
    with canonical.shared_fragments(), pytest.raises(LiteralError):
        has_marker(value["spec"])


def _secrets(value: Any) -> set[str]:
    """The config keys of the secret markers in ``value``, read recursively (the reference)."""
    if isinstance(value, dict):
        if SECRET_MARKER in value:
            return {value[SECRET_MARKER]}
        return set().union(*(_secrets(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_secrets(item) for item in value))
    return set()


_MALFORMED = st.one_of(
    st.builds(lambda key: {SECRET_MARKER: key}, st.sampled_from(["has space", ""])),
    st.just({SECRET_MARKER: {REF_MARKER: "b", OUTPUT_KEY: "arn"}}),
    st.just({SECRET_MARKER: "k", "other": 1}),
    st.just({REF_MARKER: "b"}),
    st.just({JSON_MARKER: 1, "other": 2}),
    st.just({SECRET_MARKER: "k", REF_MARKER: "b", OUTPUT_KEY: "arn"}),
)
ANY_VALUES = st.recursive(st.one_of(_SCALAR, _SECRET, _REF, _MALFORMED), _with_json, max_leaves=25)


def _outcome(question: Any, value: Any) -> Any:
    try:
        return question(value)
    except (LiteralError, GraphError) as error:
        return type(error), str(error)


@settings(max_examples=400, deadline=None)
@given(ANY_VALUES)
def test_the_graphs_walk_finds_the_references_and_the_printers_answers(value: Any) -> None:
    try:
        found = walk(value)
    except GraphError as error:
        with pytest.raises(GraphError, match="^" + re.escape(str(error)) + "$"):
            references(value)
        return  # a graph holding it is refused before anything is printed
    assert found.references == _outcome(references, value)
    alone = _outcome(pulumi_literals._markers, value)
    with remembered_walks():
        Resource("t:x:Y", "r", {"v": value}, Origin((), None)).references()
        assert _outcome(pulumi_literals._markers, value) == alone


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, VALUES, max_size=4))
def test_a_resource_walked_within_a_build_gives_the_same_references_and_answers(
    inputs: dict[str, Any],
) -> None:
    resource = Resource("t:x:Y", "r", inputs, Origin((), None))
    alone = (resource.references(), [has_marker(v) for v in inputs.values()])
    with remembered_walks():
        walked_first = resource.references()
        with canonical.shared_fragments():
            shared = (walked_first, [has_marker(v) for v in inputs.values()])
            keys = secret_keys(inputs)
    assert shared == alone and keys == _secrets(inputs)
