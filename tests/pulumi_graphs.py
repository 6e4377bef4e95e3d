"""Hand-made resource graphs for the Pulumi printer and the build tests.

They exercise every printer feature without depending on any target's lowering: nested
components, a parent and a dependency that sort after their dependents (so the printer must
reorder), every resource option, secret markers, custom resources, numbers of every kind,
None, empty containers, long lists that force line breaks, and hostile strings everywhere a
spec string can reach a program (values, free-form map keys, resource names, component props).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlplane.compiler.core.diagnostics import Location
from mlplane.compiler.core.graph import (
    Resource,
    ResourceGraph,
    ResourceOptions,
    origin_at,
    secret_ref,
)
from mlplane.compiler.core.ir import System
from mlplane.targets.pulumi_classes import CLASSES
from tests.specs import BASE, compile_text

HOSTILE = (
    'x"); import os #',
    "'''",
    '"""',
    "a\rimport os",
    "a\nimport os",
    "trailing\\",
    "${{ secrets.X }}",
    "{{ .Value }}",
    "\u202eevil",
    "\u2066isolate\u2069",
    "zero\u200bwidth",
    "nul\x00byte",
    "\\u0041 not an escape",
    "# not a comment",
    "f'{__import__(\"os\")}'",
    "caf\u00e9 \u0430 homoglyph",
)
"""Strings that would break out of a naively formatted literal, comment or template."""

ORIGIN = origin_at(Location("mlplane.yaml", 1, 1), ("models", "scorer"))
NAMESPACE = "demo-dev"


def demo_system(directory: Path, environment: str = "dev") -> System:
    """The system of ``tests/specs.BASE`` (it only names the spec in headers)."""
    result = compile_text(directory, BASE)
    assert result.ok, result.sorted_diagnostics()
    return result.systems[environment]


def kube(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": name}}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def _resource(token: str, name: str, inputs: dict[str, Any], **kwargs: Any) -> Resource:
    return Resource(token, name, inputs, ORIGIN, **kwargs)


def _component(token: str, name: str, parent: str | None, **props: Any) -> Resource:
    return _resource(token, name, dict(props), parent=parent, component=True)


def _deployment() -> Resource:
    container = {
        "name": "scorer",
        "image": "ghcr.io/acme/scorer@sha256:" + "ab" * 32,
        "args": [f"--flag-{i}" for i in range(12)],
        "env": [
            {"name": "FEAST_TOKEN", "value": secret_ref("feast-token")},
            {"name": "THRESHOLD", "value": "0.2"},
        ],
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "500m"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
        },
        "ports": [],
        "volumeMounts": None,
    }
    spec = {
        "replicas": 2,
        "progressDeadlineSeconds": 600.0,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "scorer"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "scorer"}},
            "spec": {"containers": [container], "nodeSelector": {}},
        },
    }
    options = ResourceOptions(
        protect=True,
        retain_on_delete=True,
        delete_before_replace=True,
        ignore_changes=("spec.replicas", "metadata.annotations"),
        additional_secret_outputs=("status",),
    )
    return _resource(
        "kubernetes:apps/v1:Deployment",
        "demo-scorer",
        kube("apps/v1", "Deployment", "scorer", spec=spec),
        parent="demo-model-scorer",
        depends_on=("demo-namespace", "demo-scorer-sa"),
        options=options,
    )


def rich_graph(environment: str = "dev") -> ResourceGraph:
    """Every printer feature once; ``a-settings`` and ``aaa-group`` force a reordering."""
    rollout_spec = {
        "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "10m"}}]}}
    }
    resources = [
        _component("mlplane:index:System", "demo", None, system="demo", environment=environment),
        _component("mlplane:index:Model", "demo-model-scorer", "demo", model="scorer", replicas=2),
        _component("mlplane:index:Group", "aaa-group", "demo-model-scorer"),
        _resource(
            "kubernetes:core/v1:Namespace",
            "demo-namespace",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            },
            parent="demo",
        ),
        _resource(
            "kubernetes:core/v1:ServiceAccount",
            "demo-scorer-sa",
            kube("v1", "ServiceAccount", "scorer", automountServiceAccountToken=False),
            parent="demo-model-scorer",
            depends_on=("demo-namespace",),
        ),
        _deployment(),
        _resource(
            "kubernetes:core/v1:Service",
            "demo-scorer-service",
            kube(
                "v1",
                "Service",
                "scorer",
                spec={"ports": [{"port": 80, "targetPort": 8080}], "type": "ClusterIP"},
            ),
            parent="demo-model-scorer",
            depends_on=("demo-namespace",),
        ),
        _resource(
            "kubernetes:core/v1:Secret",
            "demo-feast-token",
            kube(
                "v1",
                "Secret",
                "feast-token",
                type="Opaque",
                stringData={"token": secret_ref("feast-token")},
            ),
            parent="demo",
            depends_on=("demo-namespace",),
        ),
        _resource(
            "kubernetes:core/v1:ConfigMap",
            "a-settings",
            kube("v1", "ConfigMap", "settings", data={"ratio": "0.5", "empty": ""}, immutable=True),
            parent="aaa-group",
            depends_on=("demo-namespace",),
        ),
        _resource(
            "kubernetes:argoproj.io/v1alpha1:Rollout",
            "demo-scorer-rollout",
            kube("argoproj.io/v1alpha1", "Rollout", "scorer", spec=rollout_spec),
            parent="demo-model-scorer",
            depends_on=("demo-scorer",),
        ),
    ]
    return ResourceGraph.build(environment, "kubernetes", resources)


def hostile_graph(environment: str = "dev") -> ResourceGraph:
    """Hostile strings as values, free-form keys, resource names and component props."""
    table = {f"k{i:02d}-{text}": text for i, text in enumerate(HOSTILE)}
    resources = [
        _component("mlplane:index:System", "demo", None, **{"props": table, "list": list(HOSTILE)}),
        _resource(
            "kubernetes:core/v1:ConfigMap",
            "demo-hostile",
            kube("v1", "ConfigMap", "hostile", data=table)
            | {
                "metadata": {
                    "name": "hostile",
                    "namespace": NAMESPACE,
                    "annotations": table,
                    "labels": {"x": HOSTILE[0]},
                }
            },
            parent="demo",
        ),
    ]
    for i, text in enumerate(HOSTILE):
        resources.append(
            _resource(
                "kubernetes:core/v1:Service",
                f"svc-{i:02d}-{text}",
                kube(
                    "v1",
                    "Service",
                    f"svc-{i:02d}",
                    spec={"externalName": text, "type": "ExternalName"},
                ),
                parent="demo",
            )
        )
    return ResourceGraph.build(environment, "kubernetes", resources)


_REQUIRED: dict[str, Any] = {
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
    "value": 1000,
}
"""Inputs that some classes require (the SDK raises TypeError without them)."""


def table_graph(environment: str = "dev") -> ResourceGraph:
    """One resource of every Kubernetes row of ``CLASSES``: proves each row registers its own
    token (``tests/pulumi_aws_graphs.py`` does the same for the AWS rows)."""
    resources = []
    kubernetes = [
        (token, cls) for token, cls in sorted(CLASSES.items()) if cls.module == "pulumi_kubernetes"
    ]
    for i, (token, cls) in enumerate(kubernetes):
        inputs: dict[str, Any] = {"metadata": {"name": f"r{i}", "namespace": NAMESPACE}}
        inputs.update({key: value for key, value in _REQUIRED.items() if key in cls.inputs})
        if "spec" in cls.inputs:
            inputs["spec"] = {"marker": i}
        resources.append(_resource(token, f"row-{i:02d}", inputs))
    return ResourceGraph.build(environment, "kubernetes", resources)
