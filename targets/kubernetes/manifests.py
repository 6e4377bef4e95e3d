"""Plain Kubernetes YAML of the resource graph, for ``kubectl apply``, Argo CD or Flux.

One file per model (``manifests/model-<name>.yaml``) and one for the namespace-level objects
(``manifests/00-namespace.yaml``, first in name order so ``kubectl apply -f manifests/``
creates the Namespace before what lives in it). Components are Pulumi's grouping nodes, not
Kubernetes objects, and are left out. Every object is dumped once, by one deterministic dumper,
in a fixed order.

A Secret whose value is Pulumi secret config (``env:`` references) cannot be written without
writing the value: it is left out, and ``manifests/README.md`` says how to create it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from mlplane.compiler.core import ir, yamltext
from mlplane.compiler.core.graph import Resource, ResourceGraph
from mlplane.compiler.core.provenance import header_line
from mlplane.compiler.core.resource_texts import text_of
from mlplane.targets.kubernetes import names
from mlplane.targets.monitoring.rules import shared_group
from mlplane.targets.pulumi_literals import resource_secret_keys

MANIFEST_DIR = "manifests"
NAMESPACE_FILE = "00-namespace.yaml"
README_FILE = "README.md"
KIND_ORDER = (
    "Namespace", "NetworkPolicy", "ServiceAccount", "Secret", "ExternalSecret", "ConfigMap",
    "AnalysisTemplate", "Service", "Deployment", "Rollout", "HorizontalPodAutoscaler",
    "PodDisruptionBudget", "CronJob", "ServiceMonitor", "Ingress", "PrometheusRule",
    "AlertmanagerConfig",
)  # fmt: skip


def header(system: ir.System, comment: str = "#") -> str:
    """The shared generated-file header (safe display names only, see ``compiler.core.provenance``)."""
    return f"{comment} {header_line(system)}"


def _order(resource: Resource) -> tuple[int, str]:
    """An object's place in its file: by its kind (:data:`KIND_ORDER`), then its name (read as
    a text of the object, taken from an earlier build when the object is the same: its inputs
    then stay unread, ``graph.Deferred``)."""
    kind, name = kind_and_name(resource)
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, name


def kind_and_name(resource: Resource) -> tuple[str, str]:
    """An object's ``kind`` and ``metadata.name``, as a text of the object
    (:data:`MANIFEST_ORDER`)."""
    text = text_of(MANIFEST_ORDER, resource.name, partial(_kind_and_name, resource))
    kind, _, name = text.partition("\n")
    return kind, name


MANIFEST_ORDER = "kubernetes-manifest-order"
"""The kind (``resource_texts``) of an object's kind and name, on two lines."""


def _kind_and_name(resource: Resource) -> str:
    kind = str(resource.inputs["kind"])
    if "\n" in kind:
        raise ValueError(f"a Kubernetes kind on several lines: {kind!r}")
    return f"{kind}\n{resource.inputs['metadata']['name']}"


def dump(documents: Iterable[Mapping[str, Any]]) -> str:
    """The one YAML writer of this target: a ``---`` document per object, keys sorted, block
    style, ASCII, by the project's one YAML writer (``compiler/core/yamltext.py``), without
    PyYAML's per-node representer (80 % of the emitter's time). The inputs are written as they
    are, keys sorted by the writer (a sorted copy through ``json`` cost a fifth of the
    emitter's time on a large graph)."""
    return "".join("---\n" + yamltext.dump(document, sort_keys=True) for document in documents)


def render(head: str, resources: list[Resource]) -> str:
    """``head``, then each object's YAML document (:func:`document`) in :func:`_order`."""
    ordered = sorted(resources, key=_order)
    texts = [text_of(MANIFEST_YAML, r.name, partial(document, r)) for r in ordered]
    return head + "\n" + "".join(texts)


MANIFEST_YAML = "kubernetes-manifest-yaml"
"""The kind (``resource_texts``) of an object's YAML document: a build that reuses an earlier
one's texts takes those of the objects it did not lower again."""


def document(resource: Resource) -> str:
    """The YAML document of one object, as :func:`dump` writes it: a function of the object alone,
    wherever it stands."""
    return dump((_shared(resource.inputs),))


def _shared(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """A PrometheusRule object with its rule groups as the monitoring emitter shares them
    (``monitoring/rules.yaml`` holds the same groups: written once a build); any other object
    as it is."""
    spec = document.get("spec")
    if document.get("kind") != "PrometheusRule" or type(spec) is not dict:
        return document
    groups = spec.get("groups")
    if type(groups) is not list:
        return document
    shared = [shared_group(group) if type(group) is dict else group for group in groups]
    return {**document, "spec": {**spec, "groups": shared}}


def emit_manifests(system: ir.System, graph: ResourceGraph) -> dict[str, str]:
    """``{relative path: text}``; pure."""
    owners = {names.model_component(name): name for name in system.models}
    groups: dict[str, list[Resource]] = {}
    left_out: list[Resource] = []
    for resource in graph:
        if resource.component:
            continue
        if resource_secret_keys(resource):
            left_out.append(resource)
            continue
        model = owners.get(resource.parent or "")
        file = f"model-{model}.yaml" if model is not None else NAMESPACE_FILE
        groups.setdefault(file, []).append(resource)
    head = header(system)
    files = {
        f"{MANIFEST_DIR}/{name}": render(head, items) for name, items in sorted(groups.items())
    }
    owned = [r for items in groups.values() for r in items if r.options.ignore_changes]
    files[f"{MANIFEST_DIR}/{README_FILE}"] = readme(system, sorted(groups), left_out, owned)
    return files


def readme(
    system: ir.System, files: list[str], left_out: list[Resource], owned: Sequence[Resource] = ()
) -> str:
    namespace = system.environment.namespace
    lines = [
        header(system, "<!--") + " -->",
        "",
        f"# Kubernetes manifests of {system.name} ({system.environment.name})",
        "",
        f"Apply in file name order (`kubectl apply -f .`); `{NAMESPACE_FILE}` creates the "
        f"namespace `{namespace}` first. The cluster needs the Argo Rollouts, Prometheus "
        "Operator and external-secrets CRDs and controllers this target's README lists.",
        "",
        "Files: " + ", ".join(f"`{name}`" for name in files) + ".",
        "",
    ]
    lines += _controller_notes(owned)
    lines += _secret_notes(system, left_out)
    return "\n".join(lines).rstrip("\n") + "\n"


def _controller_notes(owned: Sequence[Resource]) -> list[str]:
    """Fields a controller takes over after the first apply: a server-side re-apply conflicts."""
    if not owned:
        return []
    lines = [
        "## Re-applying",
        "",
        "After the first apply a controller manages these fields, so re-apply with client-side "
        "`kubectl apply -f .` (its three-way merge leaves them alone); a server-side re-apply "
        "(`--server-side`) conflicts on them, and `--force-conflicts` would take them back from "
        "the controller:",
        "",
    ]
    for resource in sorted(owned, key=lambda r: r.name):
        kind, name = kind_and_name(resource)
        fields = ", ".join(f"`{path}`" for path in resource.options.ignore_changes)
        lines.append(f"- {kind} `{name}`: {fields}")
    return [*lines, ""]


def _secret_notes(system: ir.System, left_out: list[Resource]) -> list[str]:
    if not left_out:
        return ["No Secret has to be created by hand for these manifests."]
    lines = [
        "## Secrets to create before applying",
        "",
        "These Secrets take their value from the deployer's environment (`env:` references). The",
        "Pulumi program reads them from Pulumi secret config; with plain manifests, create them:",
        "",
        "```sh",
    ]
    namespace = system.environment.namespace
    for resource in sorted(left_out, key=_order):
        name = str(resource.inputs["metadata"]["name"])
        secret = system.security.secrets.get(name)
        variable = secret.ref.removeprefix("env:") if secret is not None else "VALUE"
        namespace = str(resource.inputs["metadata"].get("namespace", namespace))
        lines.append(
            f'kubectl create secret generic {name} --namespace {namespace} --from-literal=value="${variable}"'
        )
    return [*lines, "```"]
