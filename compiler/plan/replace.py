"""Which input changes force Pulumi to *replace* a resource (delete and re-create it).

A plan that says "update" where Pulumi will replace is worse than no plan: replacing a
Deployment restarts every pod at once, replacing a PersistentVolumeClaim loses its volume. The
table below is not guessed; it is the Kubernetes provider's own list of "force new" properties
(pulumi-kubernetes v4, ``provider/pkg/provider/diff.go``, ``forceNewProperties``), which in turn
mirrors the fields the Kubernetes API server refuses to change in place (apps/v1 validation:
Deployment and DaemonSet ``spec.selector``; StatefulSet fields other than ``replicas``,
``ordinals``, ``template``, ``updateStrategy``, ``persistentVolumeClaimRetentionPolicy`` and
``minReadySeconds``; batch/v1 Job ``spec.template``, ``spec.selector``; core/v1 Service
``spec.clusterIP``; PersistentVolumeClaim's spec apart from a storage request increase).

Two rows depend on provider settings that mlplane's programs leave at their defaults:
ConfigMap ``data``/``binaryData`` and Secret ``data``/``stringData`` force a replacement unless
the provider is configured with ``enableConfigMapMutable``/``enableSecretMutable``.

CronJob has no row beyond the metadata one on purpose: every field of a CronJob's spec,
``jobTemplate`` included, can be changed in place (the next run uses the new template), and the
provider updates it. Custom resources (Argo ``Rollout``, ``ServiceMonitor``, ``ExternalSecret``)
get only the metadata row, as in the provider. ``docs/plan.md`` prints this table.

The AWS rows (``aws:*`` types, from the Terraform AWS provider's ``ForceNew`` attributes) live
in ``compiler/plan/replace_aws.py``; :func:`replace_fields` and the printed table use both.

Paths use the graph's wire-form keys; ``[*]`` matches every element of a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mlplane.compiler.plan import replace_aws as aws

KUBERNETES_PREFIX = "kubernetes:"
METADATA_FIELDS = ("metadata.name", "metadata.namespace")
"""Every Kubernetes object: a new name or namespace is a different object."""

_SELECTOR = ("spec.selector",)
_CONTAINER_FIELDS = (
    "args", "command", "env", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "ports",
    "readinessProbe", "resources", "securityContext", "stdin", "stdinOnce",
    "terminationMessagePath", "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts",
    "workingDir",
)  # fmt: skip
_POD_FIELDS = (
    "affinity", "automountServiceAccountToken", "dnsConfig", "dnsPolicy", "enableServiceLinks",
    "hostAliases", "hostIPC", "hostNetwork", "hostPID", "hostname", "imagePullSecrets",
    "nodeName", "nodeSelector", "overhead", "preemptionPolicy", "priority", "priorityClassName",
    "readinessGates", "restartPolicy", "runtimeClassName", "schedulerName", "securityContext",
    "serviceAccount", "serviceAccountName", "shareProcessNamespace", "subdomain",
    "terminationGracePeriodSeconds", "volumes",
)  # fmt: skip
_PV_SOURCES = (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc",
    "flexVolume", "flocker", "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local", "nfs",
    "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
    "vsphereVolume",
)  # fmt: skip

REPLACE_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "kubernetes:apps/v1:Deployment": _SELECTOR,
        "kubernetes:apps/v1:DaemonSet": _SELECTOR,
        "kubernetes:apps/v1:StatefulSet": (
            "spec.podManagementPolicy",
            "spec.revisionHistoryLimit",
            "spec.selector",
            "spec.serviceName",
            "spec.volumeClaimTemplates",
        ),
        "kubernetes:batch/v1:Job": (
            "spec.completions",
            "spec.parallelism",
            "spec.selector",
            "spec.template",
        ),
        "kubernetes:core/v1:ConfigMap": ("binaryData", "data"),
        "kubernetes:core/v1:PersistentVolume": tuple(f"spec.{s}" for s in _PV_SOURCES),
        "kubernetes:core/v1:PersistentVolumeClaim": (
            "spec.accessModes",
            "spec.selector",
            "spec.storageClassName",
            "spec.volumeName",
        ),
        "kubernetes:core/v1:Pod": (
            *(f"spec.{f}" for f in _POD_FIELDS),
            *(f"spec.containers[*].{f}" for f in _CONTAINER_FIELDS),
            *(f"spec.initContainers[*].{f}" for f in _CONTAINER_FIELDS),
        ),
        "kubernetes:core/v1:ResourceQuota": ("spec.scopes",),
        "kubernetes:core/v1:Secret": ("data", "stringData", "type"),
        "kubernetes:core/v1:Service": ("spec.clusterIP",),
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": ("roleRef",),
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": ("roleRef",),
        "kubernetes:storage.k8s.io/v1:StorageClass": ("parameters", "provisioner"),
    }
)
"""Type token -> input paths that force a replacement (besides :data:`METADATA_FIELDS`)."""

_ABSENT = object()


def replace_fields(token: str) -> tuple[str, ...]:
    """Every field of ``token`` whose change forces a replacement."""
    if token.startswith(aws.AWS_PREFIX):
        return aws.COMMON_FIELDS + aws.REPLACE_FIELDS.get(token, ())
    common = METADATA_FIELDS if token.startswith(KUBERNETES_PREFIX) else ()
    return common + REPLACE_FIELDS.get(token, ())


def forced_by(token: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """The replace fields of ``token`` whose values differ between ``old`` and ``new`` inputs."""
    return tuple(f for f in replace_fields(token) if _values(old, f) != _values(new, f))


def split_field(text: str) -> tuple[str, ...]:
    """``spec.containers[*].image`` -> ``("spec", "containers", "*", "image")``."""
    return tuple(text.replace("[*]", ".*").split("."))


def _values(inputs: Mapping[str, Any], text: str) -> list[Any]:
    """Every value at ``text`` (``[*]`` expands over lists); absent values are kept as a marker
    so that adding or removing a field counts as a change of it."""
    found: list[Any] = [inputs]
    for part in split_field(text):
        step: list[Any] = []
        for value in found:
            if part == "*":
                step.extend(value if isinstance(value, list) else [_ABSENT])
            else:
                step.append(value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT)
        found = step
    return found


def covers(field_text: str, path: tuple[str | int, ...]) -> bool:
    """Whether a change at property ``path`` lies at, below or above the replace field."""
    pattern = split_field(field_text)
    size = min(len(pattern), len(path))
    for want, got in zip(pattern[:size], path[:size], strict=True):
        if want == "*":
            if not isinstance(got, int):
                return False
        elif want != got:
            return False
    return True


def replace_table_markdown() -> str:
    """The table printed in ``docs/plan.md`` (a test keeps the two equal)."""
    lines = ["| resource type | fields whose change forces a replacement |", "|---|---|"]
    lines.append(f"| every `kubernetes:*` type | {', '.join(f'`{f}`' for f in METADATA_FIELDS)} |")
    lines.append(f"| every `aws:*` type | {', '.join(f'`{f}`' for f in aws.COMMON_FIELDS)} |")
    for token, fields in sorted({**REPLACE_FIELDS, **aws.REPLACE_FIELDS}.items()):
        shown = _compact(fields)
        lines.append(f"| `{token}` | {shown} |")
    return "\n".join(lines) + "\n"


def _compact(fields: tuple[str, ...]) -> str:
    """Long rows (Pod, PersistentVolume) grouped by prefix, so the table stays readable."""
    groups: dict[str, list[str]] = {}
    for field in fields:
        head, _, tail = field.rpartition(".")
        groups.setdefault(head, []).append(tail)
    parts = []
    for head, tails in groups.items():
        if len(tails) > 3 and head:  # top-level inputs stay one by one
            parts.append(f"`{head}.{{{', '.join(tails)}}}`")
        else:
            parts.extend(f"`{head}.{tail}`" if head else f"`{tail}`" for tail in tails)
    return ", ".join(parts)
