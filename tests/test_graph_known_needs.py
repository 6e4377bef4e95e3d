"""``graph.known_needs``: a graph takes a resource's needs from the table only for that very
resource, and builds the same graph, checked the same way, with or without the table."""

from __future__ import annotations

import pytest

from mlplane.compiler.core.diagnostics import Location
from mlplane.compiler.core.graph import (
    GraphError,
    Resource,
    ResourceGraph,
    known_needs,
    ref,
)
from mlplane.compiler.core.ir import Origin

ORIGIN = Origin(("models", "m"), Location("mlplane.yaml", 1, 1))


def _resources() -> list[Resource]:
    bucket = Resource("aws:s3/bucket:Bucket", "bucket", {"acl": "private"}, ORIGIN)
    reader = Resource(
        "aws:iam/policy:Policy", "reader", {"policy": {"arn": ref("bucket", "arn")}}, ORIGIN
    )
    return [bucket, reader]


def test_the_table_is_taken_for_the_very_resource_only() -> None:
    bucket, reader = _resources()
    twin = Resource(reader.type, reader.name, dict(reader.inputs), reader.origin)
    assert twin == reader and twin is not reader
    table = {id(reader): (reader, ("bucket",)), id(bucket): (bucket, ())}
    with known_needs(table):
        graph = ResourceGraph.build("dev", "aws", [bucket, reader])
        again = ResourceGraph.build("dev", "aws", [bucket, twin])
    fresh = ResourceGraph.build("dev", "aws", [bucket, reader])
    assert graph == fresh and dict(graph.needs) == dict(fresh.needs) == dict(again.needs)
    # an entry under another resource's id is not taken: the twin is walked
    with known_needs({id(twin): (reader, ("elsewhere",))}):
        assert ResourceGraph.build("dev", "aws", [bucket, twin]).needs["reader"] == ("bucket",)


def test_the_check_still_runs_on_taken_needs() -> None:
    """Needs taken from the table are checked against the graph's names like walked ones."""
    bucket, reader = _resources()
    with known_needs({id(reader): (reader, ("bucket", "missing"))}), pytest.raises(GraphError):
        ResourceGraph.build("dev", "aws", [bucket, reader])
    with pytest.raises(GraphError):
        ResourceGraph.build("dev", "aws", [reader])


def test_the_table_applies_only_within() -> None:
    bucket, reader = _resources()
    with known_needs({id(reader): (reader, ("bucket", "missing"))}):
        pass
    assert ResourceGraph.build("dev", "aws", [bucket, reader]).needs["reader"] == ("bucket",)


def test_resources_of_a_type_are_those_of_the_graph_in_its_order() -> None:
    bucket, reader = _resources()
    logs = Resource(bucket.type, "logs", {"acl": "private"}, ORIGIN)
    graph = ResourceGraph.build("dev", "aws", [reader, logs, bucket])
    for token in {r.type for r in graph}:
        assert graph.of_type(token) == [r for r in graph if r.type == token]
    assert [r.name for r in graph.of_type(bucket.type)] == ["bucket", "logs"]
    assert graph.of_type("aws:sqs/queue:Queue") == []
    graph.of_type(bucket.type).clear()  # a new list each time: the graph is unchanged
    assert len(graph.of_type(bucket.type)) == 2
