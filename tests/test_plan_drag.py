"""What a change drags along: readers of replaced, created or renamed resources are in the plan.

``compiler/plan/diff.py`` (``drag``) follows ``$ref`` markers from every changed resource. The
property test generates acyclic graphs and edits, and checks the plan against a fixpoint over
the definition (quadratic, obviously right): every resource that transitively reads a replaced
or renamed resource's changed output is listed with a reason naming it, its unknown values are
``known after apply``, a replace-table field makes it a replacement, and nothing else gets a
reason. The unit tests pin the AWS endpoint case, ``$json`` documents, ``ignoreChanges``, fixed
names and a cyclic graph (impossible from a target, guarded anyway).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplane.compiler.plan.diff import diff_graphs, parse_path, patched, readers_of
from mlplane.compiler.plan.model import ResourceChange
from mlplane.compiler.plan.replace import covers, forced_by, replace_fields
from tests.test_plan_rules import resource

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"  # bucket forces a replacement
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"  # alarmName forces a replacement
TYPES = (CONFIG, ENDPOINT, POLICY, ALARM)
READ_AT = ("bucket", "alarmName", "endpointConfigName", "tags", "policy", "dimensions")
OUTPUTS = ("arn", "name", "id")


def ref(name: str, output: str) -> dict[str, str]:
    return {"$ref": name, "$output": output}


# --- generated graphs ----------------------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(base, head): a DAG whose resource i reads outputs of resources before it, and a head
    with a few resources edited (a literal changed, a replace field changed, a name changed),
    some deleted or added."""
    size = draw(st.integers(2, 12))
    base: dict[str, Any] = {}
    for i in range(size):
        name = f"r{i}"
        inputs: dict[str, Any] = {"v": 0}
        if draw(st.booleans()):
            inputs["name"] = f"{name}-n"
        for _ in range(draw(st.integers(0, 3)) if i else 0):
            target = f"r{draw(st.integers(0, i - 1))}"
            output = draw(st.sampled_from(OUTPUTS))
            at = draw(st.sampled_from(READ_AT))
            marker = ref(target, output)
            if at == "policy":
                inputs[at] = {"$json": {"Statement": [{"Resource": marker}]}}
            elif at == "dimensions":
                inputs[at] = {"EndpointConfigName": marker}
            else:
                inputs[at] = marker
        base[name] = resource(draw(st.sampled_from(TYPES)), name, inputs)
    head = copy.deepcopy(base)
    for name in draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True)):
        edit = draw(st.sampled_from(("literal", "replace", "rename", "delete")))
        inputs = head[name]["inputs"]
        if edit == "literal":
            inputs["v"] = 1
        elif edit == "replace":
            head[name]["type"] = {CONFIG: ENDPOINT}.get(head[name]["type"], CONFIG)
        elif edit == "rename":
            inputs["name"] = f"{name}-renamed"
        elif not any(name in str(r["inputs"]) for r in head.values() if r["name"] != name):
            del head[name]  # only when nothing reads it (a graph never holds a dangling $ref)
    if draw(st.booleans()):
        head["new"] = resource(ENDPOINT, "new", {"tags": ref("r0", "arn")})
    return base, head


def _refs(
    value: Any, path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], str, str]]:
    if isinstance(value, dict):
        if "$ref" in value:
            return [(path, value["$ref"], value["$output"])]
        if "$json" in value:
            return [(path, n, o) for _, n, o in _refs(value["$json"])]
        return [r for k, v in value.items() for r in _refs(v, (*path, k))]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in _refs(v, (*path, i))]
    return []


def _known(value: Any) -> bool:
    return not _refs(value) and "$secret" not in str(value)


def expected(base: dict[str, Any], head: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Reader -> the (resource, output) pairs it reads that change, by a fixpoint."""
    replaced = {
        n
        for n in base.keys() & head.keys()
        if base[n]["type"] != head[n]["type"]
        or forced_by(head[n]["type"], base[n]["inputs"], head[n]["inputs"])
    }
    changed: set[tuple[str, str]] = set()
    while True:
        before = (len(changed), len(replaced))
        for name, new in head.items():
            old = base.get(name)
            for output in OUTPUTS:
                value = new["inputs"].get(output)
                stable = (
                    old is not None
                    and output in new["inputs"]
                    and _known(value)
                    and old["inputs"].get(output) == value
                )
                moved = old is not None and (
                    old["inputs"].get(output) != value
                    or any((n, o) in changed for _, n, o in _refs(value))
                )
                if ((old is None or name in replaced) and not stable) or moved:
                    changed.add((name, output))
            if old is not None:
                for path, target, output in _refs(new["inputs"]):
                    fields = replace_fields(new["type"])
                    if (target, output) in changed and any(covers(f, path) for f in fields):
                        replaced.add(name)
        if (len(changed), len(replaced)) == before:
            break
    found: dict[str, set[tuple[str, str]]] = {}
    for name, new in head.items():
        if name in base:
            for _, target, output in _refs(new["inputs"]):
                if (target, output) in changed:
                    found.setdefault(name, set()).add((target, output))
    return found


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_every_transitive_reader_of_a_changed_resource_is_planned_with_a_reason(
    sides: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    base, head = sides
    changes, unchanged = diff_graphs(base, head)
    planned = {c.name: c for c in changes}
    want = expected(base, head)
    for reader, reads in want.items():
        change = planned.get(reader)
        assert change is not None and change.action in ("update", "replace"), (reader, reads)
        assert {(b.resource, b.output) for b in change.because} == reads, reader
        for because in change.because:
            [prop] = [p for p in change.changes if p.path == because.path]
            cause = "updated" if because.cause == "updated" else "new"
            assert prop.known_after_apply or cause == "updated", (reader, because)
            forced = any(covers(f, parse_path(because.path)) for f in replace_fields(change.type))
            assert not forced or change.action == "replace", (reader, because)
    for change in changes:  # no reason where nothing it reads changes
        assert bool(change.because) == (change.name in want), change.name
    both = base.keys() & head.keys()
    assert unchanged == len(both) - sum(1 for c in changes if c.action in ("update", "replace"))


@st.composite
def edited(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(base, head, names): :func:`graphs` with, besides, inputs that gain, lose or move a
    ``$ref`` and a deleted resource that is read; ``names`` is a superset of the resources
    whose inputs differ or that are on one side only."""
    base, head = draw(graphs())
    names = sorted(base)
    for name in draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        inputs = head.setdefault(name, copy.deepcopy(base[name]))["inputs"]
        edit = draw(st.sampled_from(("gain", "lose", "move", "delete")))
        marker = ref(draw(st.sampled_from(names)), draw(st.sampled_from(OUTPUTS)))
        if edit == "gain":
            inputs[draw(st.sampled_from(READ_AT))] = marker
        elif edit == "lose":
            for key in [k for k in inputs if "$ref" in str(inputs[k])][:1]:
                del inputs[key]
        elif edit == "move":
            inputs["tags"] = [{"k": marker}, inputs.pop("bucket", 0)]
        else:
            del head[name]
    changed = {n for n in set(base) | set(head) if base.get(n) != head.get(n)}
    extra = draw(st.lists(st.sampled_from(names), max_size=2))
    return base, head, sorted(changed | set(extra))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_the_patched_reader_table_is_the_head_s_own(
    sides: tuple[dict[str, Any], dict[str, Any], list[str]],
) -> None:
    """The base's reader table patched with the changed resources equals the head's table
    built from scratch (same lists in the same order), and the plan is the same with it."""
    base, head, changed = sides
    before = copy.deepcopy(readers_of(base))
    table = readers_of(base)
    assert patched(table, base, head, changed) == readers_of(head)
    assert table == before  # the base's table (cached with the base) is left untouched
    try:
        plain = diff_graphs(base, head)
    except KeyError:  # a deleted resource still read: no real graph holds a dangling $ref
        return
    assert diff_graphs(base, head, readers_of(base)) == plain


# --- pinned cases --------------------------------------------------------------------------------


def _endpoint_case(**extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    variant = {"initialInstanceCount": 4, "instanceType": "ml.c5.xlarge", "variantName": "primary"}
    config = resource(CONFIG, "cfg", {"productionVariants": [variant]})
    endpoint = resource(
        ENDPOINT, "ep", {"name": "e", "endpointConfigName": ref("cfg", "name")}, **extra
    )
    alarm = resource(
        ALARM, "alarm", {"alarmName": "a", "dimensions": {"EndpointConfigName": ref("cfg", "name")}}
    )
    base = {"cfg": config, "ep": endpoint, "alarm": alarm}
    head = copy.deepcopy(base)
    head["cfg"]["inputs"]["productionVariants"][0]["initialInstanceCount"] = 5
    return base, head


def _by_name(changes: tuple[ResourceChange, ...]) -> dict[str, ResourceChange]:
    return {c.name: c for c in changes}


def test_a_replaced_endpoint_configuration_updates_its_endpoint_and_alarm() -> None:
    changes, unchanged = diff_graphs(*_endpoint_case())
    found = _by_name(changes)
    assert [(c.action, c.name) for c in changes] == [
        ("replace", "cfg"), ("update", "alarm"), ("update", "ep"),
    ]  # fmt: skip
    assert unchanged == 0
    [prop] = found["ep"].changes
    assert (prop.path, prop.old, prop.new, prop.known_after_apply) == (
        "endpointConfigName", ref("cfg", "name"), None, True,
    )  # fmt: skip
    assert [b.text() for b in found["ep"].because] == ["endpointConfigName: from the replaced cfg"]
    assert [b.path for b in found["alarm"].because] == ["dimensions.EndpointConfigName"]


def test_ignore_changes_keeps_a_reader_out() -> None:
    changes, _ = diff_graphs(*_endpoint_case(ignore=["endpointConfigName"]))
    assert "ep" not in _by_name(changes)


def test_a_replace_field_that_reads_a_replaced_resource_replaces_the_reader_and_its_readers() -> (
    None
):
    bucket = resource(CONFIG, "b", {"v": 1})
    policy = resource(POLICY, "p", {"bucket": ref("b", "id"), "name": "p"})
    reader = resource(ENDPOINT, "r", {"tags": ref("p", "id")})
    base = {"b": bucket, "p": policy, "r": reader}
    head = copy.deepcopy(base)
    head["b"]["inputs"]["name"] = "b2"  # name forces a replacement of the configuration
    found = _by_name(diff_graphs(base, head)[0])
    assert found["p"].action == "replace" and found["p"].replace_reasons == ("bucket",)
    assert [c.forces_replacement for c in found["p"].changes] == [True]
    assert [b.text() for b in found["r"].because] == ["tags: from the replaced p"]


def test_a_fixed_name_survives_a_replacement_and_a_policy_document_reads_as_a_whole() -> None:
    config = resource(CONFIG, "c", {"name": "fixed", "v": 1})
    by_name = resource(ENDPOINT, "n", {"endpointConfigName": ref("c", "name")})
    document = {"$json": {"Statement": [{"Resource": ref("c", "arn")}]}}
    by_arn = resource(POLICY, "d", {"bucket": "x", "policy": document})
    base = {"c": config, "n": by_name, "d": by_arn}
    head = copy.deepcopy(base)
    head["c"]["inputs"]["kmsKeyArn"] = "k"  # forces a replacement; the name stays
    found = _by_name(diff_graphs(base, head)[0])
    assert "n" not in found
    [prop] = found["d"].changes
    assert (prop.path, prop.known_after_apply, found["d"].action) == ("policy", True, "update")


def test_an_in_place_rename_shows_the_new_known_value() -> None:
    source = resource(ENDPOINT, "s", {"name": "old"})  # name forces a replacement: use tags
    source["type"] = "aws:sagemaker/pipeline:Pipeline"
    reader = resource(ALARM, "r", {"alarmName": "a", "tags": {"source": ref("s", "name")}})
    base = {"s": source, "r": reader}
    head = copy.deepcopy(base)
    head["s"]["inputs"]["name"] = "new"
    found = _by_name(diff_graphs(base, head)[0])
    [prop] = found["r"].changes
    assert (prop.path, prop.old, prop.new, prop.known_after_apply) == (
        "tags.source",
        "old",
        "new",
        False,
    )
    assert found["r"].because[0].cause == "updated"


def test_a_cyclic_graph_ends() -> None:
    a = resource(CONFIG, "a", {"x": ref("b", "x")})
    b = resource(CONFIG, "b", {"x": ref("a", "arn")})
    base = {"a": a, "b": b}
    head = copy.deepcopy(base)
    head["a"]["inputs"]["name"] = "renamed"  # forces a replacement of a
    found = _by_name(diff_graphs(base, head)[0])
    assert (found["a"].action, found["b"].action) == ("replace", "update")
    assert [x.text() for x in found["b"].because] == ["x: from the replaced a"]
    assert [x.text() for x in found["a"].because] == ["x: from the updated b"]
