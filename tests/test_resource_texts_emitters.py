"""Per-resource texts of the Pulumi program and the rule file (``compiler/core/resource_texts.py``):
inside ``reusing`` the emitters ask for them by resource and take the known ones, and what they
write is what they write outside it; a statement that refers to another resource's variable is
never recorded, since its text depends on more than the resource."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplane.compiler.core import ir
from mlplane.compiler.core.graph import ResourceGraph
from mlplane.compiler.core.resource_texts import ResourceTexts, reusing
from mlplane.targets.monitoring import rules
from mlplane.targets.monitoring.emit import PROMETHEUS_RULE, graph_groups, group_owners
from mlplane.targets.pulumi_literals import CONFIG_KEYS_KIND, secret_keys
from mlplane.targets.pulumi_program import ARGUMENTS_PRINTED, ARGUMENTS_READ, print_program
from tests.pulumi_aws_graphs import aws_graph
from tests.pulumi_graphs import demo_system, hostile_graph, rich_graph

ARGUMENT_KINDS = (ARGUMENTS_READ, ARGUMENTS_PRINTED)


def _graphs() -> list[tuple[str, ResourceGraph]]:
    return [("rich", rich_graph()), ("hostile", hostile_graph()), ("aws", aws_graph())]


@pytest.mark.parametrize(("label", "graph"), _graphs(), ids=[label for label, _ in _graphs()])
@pytest.mark.parametrize("read_graph", [True, False])
def test_the_program_is_the_same_with_texts_made_or_taken(
    label: str, graph: ResourceGraph, read_graph: bool, tmp_path: Path
) -> None:
    system = demo_system(tmp_path)
    alone = print_program(graph, system, read_graph)
    first = ResourceTexts()
    with reusing(first):
        made = print_program(graph, system, read_graph)
    again = ResourceTexts(first.made)
    with reusing(again):
        taken = print_program(graph, system, read_graph)
    assert alone == made == taken, label
    kind = ARGUMENTS_READ if read_graph else ARGUMENTS_PRINTED
    recorded = first.made.get(kind, {})
    assert recorded, "no statement was recorded"
    assert again.taken >= len(recorded)
    assert not any(k in first.made for k in ARGUMENT_KINDS if k != kind)
    keys = first.made[CONFIG_KEYS_KIND]  # asked until one resource reads a secret
    assert keys
    by_name = {r.name: r for r in graph.resources}
    assert all(
        text == _json_list(sorted(secret_keys(by_name[n].inputs))) for n, text in keys.items()
    )


def test_a_statement_that_refers_to_another_resource_is_not_recorded(tmp_path: Path) -> None:
    """The AWS graph's side resources print ``bucket_1.id``: those names depend on the other
    resources, so their statements are printed each time and never kept."""
    graph = aws_graph()
    referring = {r.name for r in graph.resources if "$ref" in repr(dict(r.inputs))}
    assert referring, "the AWS graph has references"
    texts = ResourceTexts()
    with reusing(texts):
        print_program(graph, demo_system(tmp_path), True)
    recorded = set(texts.made[ARGUMENTS_READ])
    assert not recorded & referring
    assert recorded == {r.name for r in graph.resources} - referring


def test_a_taken_statement_is_used(tmp_path: Path) -> None:
    """A known text stands for the resource's arguments: the statement is built from it (here a
    planted text, to show it is not printed again)."""
    graph = rich_graph()
    system = demo_system(tmp_path)
    first = ResourceTexts()
    with reusing(first):
        print_program(graph, system, True)
    name, text = next(iter(first.made[ARGUMENTS_READ].items()))
    planted = text.replace(f"'{name}'", "'planted-name'", 1)
    assert planted != text
    with reusing(ResourceTexts({ARGUMENTS_READ: {name: planted}})):
        program = print_program(graph, system, True)
    assert "'planted-name'" in program


def _json_list(items: list[str]) -> str:
    return json.dumps(items)


def _rule_systems() -> list[tuple[str, ir.System]]:
    from tests.test_monitoring import SYSTEMS

    kubernetes = [(label, s) for label, s in SYSTEMS if s.environment.target == "kubernetes"]
    return [(label, system) for label, system in kubernetes if system.slas][:4]


@pytest.mark.parametrize(
    ("label", "system"), _rule_systems(), ids=[label for label, _ in _rule_systems()]
)
def test_the_rule_file_is_the_same_with_group_texts_made_or_taken(
    label: str, system: ir.System
) -> None:
    from mlplane.compiler.build.pipeline import target_of
    from mlplane.compiler.core.diagnostics import Diagnostics

    target = target_of(system, Diagnostics())
    graph = target.lower(system, Diagnostics()) if target is not None else None
    assert graph is not None and group_owners(graph), label
    groups, owners = graph_groups(graph), group_owners(graph)
    alone = rules.rules_yaml(system)
    first = ResourceTexts()
    with reusing(first):
        made = rules.rules_yaml(system, groups, owners)
    again = ResourceTexts(first.made)
    with reusing(again):
        taken = rules.rules_yaml(system, groups, owners)
    assert alone == made == taken, label
    rule_objects = [r for r in graph if r.type == PROMETHEUS_RULE]
    assert dict(groups) == {g["name"]: g for r in rule_objects for g in r.inputs["spec"]["groups"]}
    # the rule file holds the SLAs' groups (a model's autoscaling rule is only an object's)
    slo_owners = {owners[rules.group_name(system, sla)] for sla in system.slas.values()}
    assert set(first.made[rules.RULE_GROUP_YAML]) == slo_owners
    assert again.taken == len(slo_owners)
