"""Resource tables that parse a resource when it is looked up (``compiler/plan/tables.py``): a
base read from the plan cache and a head that shares the base's resources give the same
resources, order, graph, digest, alert counts and diff as the dictionaries they stand for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.plan import lower as plan_lower
from mlplane.compiler.plan import tables
from mlplane.compiler.plan.diff import diff_graphs, readers_of
from mlplane.compiler.plan.lower import Lowered, from_spans, from_text, text_spans
from mlplane.compiler.plan.spec_sections import alert_counts
from tests.hypothesis_profiles import examples

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=["fraud-scoring", "recsys-gpu"])
def base(request: pytest.FixtureRequest) -> Lowered:
    """An example's prod environment, lowered (the resources a plain dictionary)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        compiled = compile_spec(Path("examples") / request.param, ["prod"])
        lowered = plan_lower.lower(compiled, "prod")
    assert lowered is not None and isinstance(lowered.resources, dict)
    return lowered


def shown_of(lowered: Lowered) -> dict[str, str]:
    """Relative spec file name -> the name its resources show."""
    found: dict[str, str] = {}
    for plain, shown in zip(lowered.graph["resources"], lowered.resources.values(), strict=True):
        found[plain["origin"]["file"]] = shown["origin"]["file"]
    return found


def read_back(lowered: Lowered) -> Lowered:
    spans = text_spans(lowered)
    assert len(spans) == len(lowered.resources)
    alerts = alert_counts(lowered.resources)
    text = memoryview(lowered.canonical.encode("ascii"))  # as the entry holds it
    return from_spans(
        lowered.system, text, shown_of(lowered), lowered.spec_files, spans, alerts,
        lowered.graph_sha256,
    )  # fmt: skip


def test_a_graph_read_from_its_spans_equals_the_parsed_graph(base: Lowered) -> None:
    lazy = read_back(base)
    assert isinstance(lazy.text, tuple)  # the entry's bytes, decoded when asked for
    assert bytes(lazy.ascii()) == base.canonical.encode("ascii")
    eager = from_text(base.system, base.canonical, shown_of(base), base.spec_files)
    assert isinstance(lazy.resources, tables.TextResources)
    assert list(lazy.resources) == list(eager.resources) == list(base.resources)
    assert dict(lazy.resources) == eager.resources == base.resources
    assert lazy.graph == eager.graph == base.graph
    assert lazy.graph_sha256 == eager.graph_sha256 == base.graph_sha256
    assert lazy.canonical == base.canonical and lazy.text == base.canonical
    assert alert_counts(lazy.resources) == alert_counts(base.resources)
    assert alert_counts(base.resources), "the example has alerting rules"


def test_a_resource_is_parsed_when_looked_up_and_once(
    base: Lowered, monkeypatch: pytest.MonkeyPatch
) -> None:
    lazy = read_back(base)
    parsed: list[str] = []

    class Counting:
        @staticmethod
        def loads(text: str) -> Any:
            parsed.append(text)
            return json.loads(text)

    monkeypatch.setattr(tables, "json", Counting)
    name = list(base.resources)[len(base.resources) // 2]
    assert name in lazy.resources and len(lazy.resources) == len(base.resources)
    assert "no such resource" not in lazy.resources
    assert parsed == []
    assert lazy.resources[name] == base.resources[name]
    assert lazy.resources[name] is lazy.resources[name]
    assert len(parsed) == 1
    with pytest.raises(KeyError):
        lazy.resources["no such resource"]


def _without_alert(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` (a PrometheusRule) with its first alerting rule dropped."""
    changed = json.loads(json.dumps(resource))
    for group in changed["inputs"]["spec"]["groups"]:
        rules = group["rules"]
        at = next((i for i, r in enumerate(rules) if "alert" in r), None)
        if at is not None:
            del rules[at]
            return changed
    raise AssertionError("no alerting rule")


def head_of(base: Lowered, lazy: Lowered) -> tuple[tables.SharedResources, dict[str, Any]]:
    """A head sharing most of ``lazy``'s resources: one rule object with an alert fewer, one
    model object changed, one resource gone and one new; and the dictionary it stands for."""
    names = list(base.resources)
    rules = [n for n in names if str(base.resources[n]["type"]).endswith(":PrometheusRule")]
    others = [n for n in names if n not in rules and base.resources[n].get("inputs")]
    gone, changed = others[0], others[1]
    own: dict[str, Any] = {rules[0]: _without_alert(dict(base.resources[rules[0]]))}
    altered = json.loads(json.dumps(base.resources[changed]))
    altered["inputs"]["mlplaneTest"] = 1
    own[changed] = altered
    added = {**json.loads(json.dumps(base.resources[rules[-1]])), "name": "added-rules"}
    own["added-rules"] = added
    order = [n for n in names if n != gone] + ["added-rules"]
    expected = {n: own.get(n, base.resources.get(n)) for n in order}
    return tables.SharedResources(order, own, lazy.resources), expected


def test_a_head_sharing_the_base_is_the_dictionary_it_stands_for(base: Lowered) -> None:
    lazy = read_back(base)
    head, expected = head_of(base, lazy)
    assert list(head) == list(expected) and dict(head) == expected and len(head) == len(expected)
    assert "added-rules" in head and "no such resource" not in head
    assert alert_counts(head) == alert_counts(expected)
    added = sum(tables.count_alerts([expected["added-rules"]]).values())
    assert added > 0
    total = sum(alert_counts(base.resources).values()) - 1 + added  # one alert fewer
    assert sum(alert_counts(head).values()) == total
    with pytest.raises(KeyError):
        head["no such resource"]


def test_the_diff_skips_shared_resources_and_finds_the_same_changes(base: Lowered) -> None:
    lazy = read_back(base)
    head, expected = head_of(base, lazy)
    readers = readers_of(base.resources)
    plain = diff_graphs(dict(base.resources), expected, readers)
    assert plain[0], "the head changes something"
    fresh = read_back(base)
    shared_head, _ = head_of(base, fresh)
    assert diff_graphs(fresh.resources, shared_head, readers) == plain
    assert isinstance(fresh.resources, tables.TextResources)
    assert len(fresh.resources._values) < len(base.resources) // 2  # parsed: the changed only
    # a head that shares another table's resources is compared in full: the same diff
    assert diff_graphs(dict(base.resources), head, readers) == plain
    assert diff_graphs(lazy.resources, head, None) == diff_graphs(dict(base.resources), expected)


def test_a_table_refuses_own_resources_outside_its_names(base: Lowered) -> None:
    lazy = read_back(base)
    with pytest.raises(ValueError, match="not among its names"):
        tables.SharedResources(["a"], {"b": {"name": "b"}}, lazy.resources)


# --- any base, any head sharing part of it -----------------------------------------------------

_SLOS = st.sampled_from(["a-latency", "b-errors", "c-drift"])
_RULE = st.one_of(
    st.fixed_dictionaries(
        {"alert": st.just("Burn"), "labels": st.fixed_dictionaries({"slo": _SLOS})}
    ),
    st.fixed_dictionaries(
        {"record": st.just("ratio"), "labels": st.fixed_dictionaries({"slo": _SLOS})}
    ),
    st.fixed_dictionaries({"alert": st.just("Other")}),
)
_RULES = st.fixed_dictionaries(
    {
        "spec": st.fixed_dictionaries(
            {
                "groups": st.lists(
                    st.fixed_dictionaries({"rules": st.lists(_RULE, max_size=3)}), max_size=2
                )
            }
        )
    }
)
_PLAIN = st.dictionaries(
    st.sampled_from(["replicas", "image", "port"]),
    st.integers(0, 3) | st.text(max_size=3),
    max_size=3,
)


def _resource(name: str, rules: bool, inputs: dict[str, Any], line: int) -> dict[str, Any]:
    kind = (
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
        if rules
        else "kubernetes:apps/v1:Deployment"
    )
    return {
        "type": kind,
        "name": name,
        "component": False,
        "parent": None,
        "dependsOn": [],
        "options": {"protect": False},
        "inputs": inputs,
        "origin": {"path": f"models.{name}", "file": "mlplane.yaml", "line": line, "column": 3},
    }


@st.composite
def _sides(
    draw: st.DrawFn,
) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[dict[str, Any]]]:
    """Base resources, then what the head does with each (shared, own: changed or equal, or
    gone) and the head's new resources."""
    count = draw(st.integers(1, 8))
    base = []
    for index in range(count):
        rules = draw(st.booleans())
        inputs = draw(_RULES if rules else _PLAIN)
        base.append(_resource(f"r{index}", rules, inputs, index + 1))
    fates = [(r["name"], draw(st.sampled_from(["shared", "own", "changed", "gone"]))) for r in base]
    added = []
    for index in range(draw(st.integers(0, 2))):
        rules = draw(st.booleans())
        added.append(_resource(f"n{index}", rules, draw(_RULES if rules else _PLAIN), 50 + index))
    return base, fates, added


@settings(max_examples=examples(200), deadline=None)
@given(_sides(), st.sampled_from(["mlplane.yaml", "spec/mlplane.yaml"]))
def test_tables_of_any_graph_equal_the_dictionaries_they_stand_for(
    sides: tuple[list[dict[str, Any]], list[tuple[str, str]], list[dict[str, Any]]], shown: str
) -> None:
    base_list, fates, added = sides
    document = {"environment": "dev", "resources": base_list, "target": "kubernetes", "version": 1}
    text = plan_lower._canonical(document)
    spans = text_spans(Lowered(None, {}, {}, "", text, parsed=document))  # type: ignore[arg-type]
    assert list(spans) == [r["name"] for r in base_list]
    rename = {"mlplane.yaml": shown}.get
    base_dict = {r["name"]: tables.renamed(r, lambda f: rename(f, f)) for r in base_list}
    alerts = alert_counts(base_dict)
    base = tables.TextResources(
        memoryview(text.encode("ascii")), spans, lambda f: rename(f, f), alerts
    )
    assert list(base) == list(base_dict) and dict(base) == base_dict
    own: dict[str, Any] = {}
    order: list[str] = []
    for name, fate in fates:
        if fate == "gone":
            continue
        order.append(name)
        if fate == "own":  # lowered again, equal to the base's
            own[name] = json.loads(json.dumps(base_dict[name]))
        elif fate == "changed":
            changed = json.loads(json.dumps(base_dict[name]))
            changed["inputs"] = {
                **changed["inputs"],
                "spec": {"groups": [{"rules": [{"alert": "New", "labels": {"slo": "a-latency"}}]}]},
            }
            own[name] = changed
    for resource in added:
        order.append(resource["name"])
        own[resource["name"]] = resource
    head = tables.SharedResources(order, own, base)
    expected = {name: own.get(name, base_dict.get(name)) for name in order}
    assert list(head) == order and dict(head) == expected and len(head) == len(expected)
    assert alert_counts(head) == alert_counts(expected)
    assert alert_counts(base) == alert_counts(base_dict)
    readers = readers_of(base_dict)
    assert diff_graphs(base, head, readers) == diff_graphs(base_dict, expected, readers)
    assert diff_graphs(base, head) == diff_graphs(base_dict, expected)
