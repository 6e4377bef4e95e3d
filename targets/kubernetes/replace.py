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

Paths use the graph's wire-form keys; ``[*]`` matches every element of a list. The plan
(``compiler/plan/replace.py``) reads this table through ``KubernetesTarget.replace_table``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mlplane.compiler.core.plugins import ReplaceTable, RiskyTypes

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

TABLE = ReplaceTable(KUBERNETES_PREFIX, METADATA_FIELDS, REPLACE_FIELDS)

RISKY_TYPES = RiskyTypes(
    data=frozenset(
        {
            "kubernetes:core/v1:Namespace",  # deleting it deletes everything inside
            "kubernetes:core/v1:PersistentVolumeClaim",
            "kubernetes:core/v1:PersistentVolume",
            "kubernetes:apps/v1:StatefulSet",  # its volume claims
        }
    ),
    serving=frozenset(
        {
            "kubernetes:apps/v1:Deployment",
            "kubernetes:apps/v1:StatefulSet",
            "kubernetes:apps/v1:DaemonSet",
            "kubernetes:argoproj.io/v1alpha1:Rollout",
            "kubernetes:core/v1:Service",
            "kubernetes:networking.k8s.io/v1:Ingress",
            "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        }
    ),
)
"""Resource types whose deletion or replacement loses data or interrupts serving (risk flags,
``compiler/plan/risk.py``)."""
