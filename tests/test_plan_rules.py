"""The rules under the plan, target-independent: graph diff, the replace table, ignoreChanges,
risk flags, alert counts, markdown code spans and the saved-plan checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlplane.compiler.core.diagnostics import format_path
from mlplane.compiler.plan.applied import AppliedRecord, stale_reasons
from mlplane.compiler.plan.diff import diff_graphs, parse_path
from mlplane.compiler.plan.json_format import SavedPlan
from mlplane.compiler.plan.markdown import code
from mlplane.compiler.plan.replace import forced_by, replace_fields
from mlplane.compiler.plan.risk import resource_risks
from mlplane.compiler.plan.spec_changes import duration
from mlplane.compiler.plan.spec_sections import alert_counts
from mlplane.targets.kubernetes.replace import REPLACE_FIELDS


def resource(token: str, name: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": token,
        "name": name,
        "component": False,
        "parent": extra.get("parent", "sys"),
        "dependsOn": [],
        "options": {
            "protect": extra.get("protect", False),
            "retainOnDelete": False,
            "deleteBeforeReplace": False,
            "ignoreChanges": extra.get("ignore", []),
            "additionalSecretOutputs": [],
        },
        "inputs": inputs,
        "origin": {"path": "models.scorer", "file": "mlplane.yaml", "line": 7, "column": 3},
    }


DEPLOYMENT = "kubernetes:apps/v1:Deployment"
META = {"name": "scorer", "namespace": "ml", "labels": {"app.kubernetes.io/name": "scorer"}}
POD = {
    "metadata": {"labels": {"app": "scorer"}},
    "spec": {"containers": [{"name": "s", "image": "a"}]},
}


def deployment(**spec: Any) -> dict[str, Any]:
    body = {"replicas": 2, "selector": {"matchLabels": {"app": "scorer"}}, "template": POD, **spec}
    return resource(DEPLOYMENT, "scorer-deployment", {"metadata": META, "spec": body})


def one_change(old: dict[str, Any], new: dict[str, Any]) -> Any:
    changes, unchanged = diff_graphs({old["name"]: old}, {new["name"]: new})
    assert unchanged == 0
    (change,) = changes
    return change


def test_update_is_property_level_with_nested_paths() -> None:
    change = one_change(deployment(), deployment(replicas=4))
    assert change.action == "update"
    assert [(p.path, p.kind, p.old, p.new) for p in change.changes] == [
        ("spec.replicas", "changed", 2, 4)
    ]


def test_labels_with_dots_get_quoted_paths_that_parse_back() -> None:
    new = deployment()
    new["inputs"] = copy.deepcopy(new["inputs"])
    new["inputs"]["metadata"]["labels"]["app.kubernetes.io/version"] = "2"
    change = one_change(deployment(), new)
    (prop,) = change.changes
    assert prop.path == 'metadata.labels["app.kubernetes.io/version"]' and prop.kind == "added"
    assert parse_path(prop.path) == ("metadata", "labels", "app.kubernetes.io/version")
    tricky = ("a", 'k"\\x', 3, "b")
    assert parse_path(format_path(tricky)) == tricky


def test_moving_a_spec_line_is_not_a_change() -> None:
    moved = deployment()
    moved["origin"] = {**moved["origin"], "line": 99}
    assert diff_graphs({"scorer-deployment": deployment()}, {"scorer-deployment": moved}) == ((), 1)


@pytest.mark.parametrize(
    ("token", "before", "after", "field"),
    [
        (
            DEPLOYMENT,
            {"spec": {"selector": {"matchLabels": {"app": "a"}}}},
            {"spec": {"selector": {"matchLabels": {"app": "b"}}}},
            "spec.selector",
        ),
        (
            "kubernetes:core/v1:Service",
            {"spec": {"clusterIP": "None"}},
            {"spec": {"clusterIP": "10.0.0.9"}},
            "spec.clusterIP",
        ),
        (
            "kubernetes:core/v1:PersistentVolumeClaim",
            {"spec": {"storageClassName": "gp2"}},
            {"spec": {"storageClassName": "gp3"}},
            "spec.storageClassName",
        ),
        (
            "kubernetes:apps/v1:StatefulSet",
            {"spec": {"volumeClaimTemplates": [{"x": 1}]}},
            {"spec": {"volumeClaimTemplates": [{"x": 2}]}},
            "spec.volumeClaimTemplates",
        ),
        (
            "kubernetes:batch/v1:Job",
            {"spec": {"template": {"a": 1}}},
            {"spec": {"template": {"a": 2}}},
            "spec.template",
        ),
        (
            "kubernetes:core/v1:Namespace",
            {"metadata": {"name": "a"}},
            {"metadata": {"name": "b"}},
            "metadata.name",
        ),
        ("kubernetes:core/v1:ConfigMap", {"data": {"k": "1"}}, {"data": {"k": "2"}}, "data"),
        (
            "kubernetes:core/v1:Pod",
            {"spec": {"containers": [{"image": "a"}]}},
            {"spec": {"containers": [{"image": "b"}]}},
            "spec.containers[*].image",
        ),
        (
            "kubernetes:argoproj.io/v1alpha1:Rollout",
            {"metadata": {"namespace": "a"}},
            {"metadata": {"namespace": "b"}},
            "metadata.namespace",
        ),
    ],
)
def test_replace_table(
    token: str, before: dict[str, Any], after: dict[str, Any], field: str
) -> None:
    change = one_change(resource(token, "r", before), resource(token, "r", after))
    assert change.action == "replace"
    assert change.replace_reasons == (field,)
    assert all(p.forces_replacement for p in change.changes)


@pytest.mark.parametrize(
    ("token", "before", "after"),
    [
        (
            "kubernetes:batch/v1:CronJob",
            {"spec": {"jobTemplate": {"a": 1}}},
            {"spec": {"jobTemplate": {"a": 2}}},
        ),
        (
            "kubernetes:batch/v1:CronJob",
            {"spec": {"schedule": "0 3 * * *"}},
            {"spec": {"schedule": "0 4 * * *"}},
        ),
        (
            "kubernetes:policy/v1:PodDisruptionBudget",
            {"spec": {"maxUnavailable": 1}},
            {"spec": {"maxUnavailable": 2}},
        ),
        (
            "kubernetes:core/v1:Service",
            {"spec": {"ports": [{"port": 80}]}},
            {"spec": {"ports": [{"port": 81}]}},
        ),
        (
            "kubernetes:core/v1:PersistentVolumeClaim",
            {"spec": {"resources": {"requests": {"storage": "1Gi"}}}},
            {"spec": {"resources": {"requests": {"storage": "2Gi"}}}},
        ),
    ],
)
def test_in_place_updates(token: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    assert one_change(resource(token, "r", before), resource(token, "r", after)).action == "update"


def test_replace_table_rows_are_kubernetes_tokens() -> None:
    assert all(
        token.startswith("kubernetes:") and token.count(":") == 2 for token in REPLACE_FIELDS
    )
    assert replace_fields("mlplane:index:Model") == ()
    assert forced_by("kubernetes:core/v1:Secret", {"type": "Opaque"}, {}) == ("type",)


def test_ignore_changes_is_honoured() -> None:
    old = deployment()
    new = deployment(replicas=7, selector={"matchLabels": {"app": "new"}})
    for side in (old, new):
        side["options"]["ignoreChanges"] = ["spec.replicas", "spec.selector"]
    change = one_change(old, new)
    assert change.action == "update"
    assert change.changes == ()
    assert set(change.ignored) == {"spec.replicas", "spec.selector.matchLabels.app"}


def test_type_or_parent_change_is_a_replacement() -> None:
    old = deployment()
    rollout = {**deployment(), "type": "kubernetes:argoproj.io/v1alpha1:Rollout"}
    change = one_change(old, rollout)
    assert change.action == "replace" and "type changed" in change.replace_reasons[0]
    moved = {**deployment(), "parent": "other"}
    assert one_change(old, moved).action == "replace"


def test_create_delete_and_order() -> None:
    base = {"b": resource(DEPLOYMENT, "b", {}), "c": resource(DEPLOYMENT, "c", {})}
    head = {"a": resource(DEPLOYMENT, "a", {}), "c": resource(DEPLOYMENT, "c", {"x": 1})}
    changes, unchanged = diff_graphs(base, head)
    assert [(c.action, c.name) for c in changes] == [
        ("create", "a"),
        ("update", "c"),
        ("delete", "b"),
    ]
    assert unchanged == 0
    assert changes[2].source.side == "base"


def test_risks_of_data_and_serving_resources() -> None:
    base = {
        "pvc": resource("kubernetes:core/v1:PersistentVolumeClaim", "pvc", {}, protect=True),
        "svc": resource("kubernetes:core/v1:Service", "svc", {"spec": {"clusterIP": "None"}}),
        "cm": resource("kubernetes:core/v1:ConfigMap", "cm", {"data": {"a": "1"}}),
    }
    head = {
        "svc": resource("kubernetes:core/v1:Service", "svc", {"spec": {"clusterIP": "10.1.1.1"}}),
        "cm": resource("kubernetes:core/v1:ConfigMap", "cm", {"data": {"a": "2"}}),
    }
    changes, _ = diff_graphs(base, head)
    risks = {(r.code, r.subject) for r in resource_risks(changes)}
    assert risks == {
        ("data-deleted", "pvc"),
        ("protected-resource", "pvc"),
        ("serving-replaced", "svc"),
    }


def test_alert_counts_per_sla() -> None:
    rules = {
        "spec": {
            "groups": [
                {"rules": [
                    {"alert": "Burn", "labels": {"slo": "latency"}},
                    {"record": "slo:x", "labels": {"slo": "latency"}},
                    {"alert": "Absent", "labels": {"slo": "latency"}},
                    {"alert": "Burn", "labels": {"slo": "fresh"}},
                ]}
            ]
        }
    }  # fmt: skip
    graph = {"r": resource("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "r", rules)}
    assert alert_counts(graph) == {"latency": 2, "fresh": 1}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "200ms"),
        (300, "5m"),
        (86400 * 400, "400d"),
        (5400, "90m"),
        (7.5, "7.5s"),
        (None, "none"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "`plain`"),
        ("a `tick` b", "``a `tick` b``"),
        ("`edge`", "`` `edge` ``"),
        ("a | b", "`a \\| b`"),
    ],
)
def test_code_spans_cannot_be_closed_from_inside(text: str, expected: str) -> None:
    assert code(text, table="|" in text) == expected


def saved(**changes: Any) -> SavedPlan:
    values: dict[str, Any] = {
        "system": "demo", "environment": "dev", "head_commit": "a" * 40, "base_ref": "origin/main",
        "base_kind": "git", "base_commit": "b" * 40, "base_graph_sha256": "1" * 64,
        "spec_sha256": "2" * 64, "graph_sha256": "3" * 64, "has_changes": True,
    }  # fmt: skip
    return SavedPlan(**{**values, **changes})


def record(**changes: Any) -> AppliedRecord:
    values: dict[str, Any] = {
        "system": "demo", "environment": "dev", "commit": "a" * 40, "spec_sha256": "2" * 64,
        "graph_sha256": "3" * 64, "spec_files": {}, "graph": {},
    }  # fmt: skip
    return AppliedRecord(**{**values, **changes})


def test_saved_plan_checks() -> None:
    assert stale_reasons(saved(), record(), None) == []
    assert stale_reasons(saved(), record(), record(graph_sha256="1" * 64)) == []
    reasons = stale_reasons(
        saved(), record(commit="c" * 40, spec_sha256="9" * 64), record(commit="d" * 40)
    )
    assert [r.split(" ")[1:3] for r in reasons] == [
        ["plan", "was"],
        ["spec", "files"],
        ["plan", "was"],
    ]
    assert "re-plan with --base applied" in reasons[-1]
    assert stale_reasons(saved(graph_sha256="0" * 64), record(), None) == [
        "the resources to apply differ from the reviewed plan (graph hash differs)"
    ]


def test_docs_show_the_replace_table_and_every_risk_code() -> None:
    from pathlib import Path

    from mlplane.compiler.plan.replace import replace_table_markdown
    from mlplane.compiler.plan.risk import risk_codes

    doc = (Path(__file__).resolve().parent.parent / "docs" / "plan.md").read_text(encoding="utf-8")
    assert replace_table_markdown() in doc, "copy replace_table_markdown() into docs/plan.md"
    for code_name in risk_codes():
        assert f"| `{code_name}` |" in doc


@pytest.mark.slow
def test_plan_benchmark_runs_end_to_end() -> None:
    """A smoke test of benchmarks/plan_bench.py at a tiny size (nothing is timed here)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "plan_bench.py"
    args = ["--models", "6", "--sources", "12", "--repeat", "1", "--mock-models", "0", "--json"]
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["plan"]["counts"]["update"] >= 1
    assert results["plan"]["spec_lines"] and results["mock"] is None
    assert results["plan"]["diff_ms_per_1000_resources"] > 0
