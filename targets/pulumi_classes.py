"""The one table from Pulumi type tokens to the SDK classes the printed program instantiates.

A target names resources by type token (``kubernetes:apps/v1:Deployment``); the program needs a
Python class and keyword arguments. Both come from this explicit table, never from string
manipulation of the token at print time, so a token the table does not know is a clear error
(:class:`UnknownTypeError`, a bug in the target) instead of a guessed import that fails on
``pulumi up``. ``tests/test_pulumi_program.py`` checks every row against the installed SDK: the
class exists, registers exactly this token, and accepts these keyword arguments.

Each row lists the graph's top-level input keys the class accepts, in the wire form the graph
uses (``automountServiceAccountToken``); the keyword argument is the SDK's snake_case name
(:func:`keyword_of`). ``implied`` inputs are set by the SDK class itself (``apiVersion`` and
``kind`` of a Kubernetes object): a graph may state them, but only with these values.

Custom resources (Argo Rollouts, Prometheus Operator, External Secrets) have no typed class:
they use ``pulumi_kubernetes.apiextensions.CustomResource`` with ``api_version``/``kind``, and
that class registers the token ``kubernetes:<apiVersion>:<kind>``.

AWS rows come from ``targets/pulumi_aws_classes.py``, generated from the installed pulumi_aws
by ``tools/gen_aws_classes.py``: besides the class and its top-level inputs, they name the SDK's
typed args class (``PythonClass.args``), whose table describes every nested input down to the
leaves, so the printer can print each nested object as its ``*Args`` class
(``targets/pulumi_typed.py``), and the outputs a ``$ref`` marker may read. To support another
AWS type, add its token to ``TOKENS`` in the generator and regenerate.

To support a new Kubernetes type, add one row here (and the test proves it against the SDK).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mlplane.targets import pulumi_aws_classes as aws
from mlplane.targets.pulumi_literals import ProgramError


class UnknownTypeError(ProgramError):
    """A type token without a row in the table: a target emitted something the printer cannot."""

    def __init__(self, token: str) -> None:
        super().__init__(
            f"no Pulumi class is registered for type token {token!r}; add a row to CLASSES in "
            "mlplane/targets/pulumi_classes.py (this is a bug in the target)"
        )
        self.token = token


@dataclass(frozen=True, slots=True)
class PythonClass:
    """How the program creates one resource type."""

    module: str
    """The module to import (``pulumi_kubernetes``) and the dotted path inside it."""
    name: str
    """The class, as an attribute path below ``module`` (``apps.v1.Deployment``)."""
    inputs: tuple[str, ...]
    """The top-level input keys (wire form) the class takes as keyword arguments."""
    implied: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Inputs the class sets itself; the graph may repeat them with exactly these values."""
    custom_resource: bool = False
    """``apiextensions.CustomResource``: ``api_version``/``kind`` are passed as arguments."""
    sdk_secret_outputs: tuple[str, ...] = ()
    """Outputs the SDK marks secret on its own (a Kubernetes Secret's ``data``)."""
    args: str | None = None
    """The typed args class below ``module`` (``s3.BucketVersioningInitArgs``), a key of
    ``pulumi_aws_classes.TYPES``: nested inputs print as typed ``*Args`` classes. None: inputs
    print as plain literals (Kubernetes, whose SDK passes wire-form dictionaries through)."""
    outputs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Output wire name -> attribute, the outputs a ``$ref`` marker may read."""

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"


_OBJECT = ("metadata", "spec")


def _kube(
    token: str, module_path: str, inputs: tuple[str, ...] = _OBJECT, secret: tuple[str, ...] = ()
) -> tuple[str, PythonClass]:
    api_version, kind = token.split(":")[1:]
    implied = {"apiVersion": api_version.removeprefix("core/"), "kind": kind}
    return token, PythonClass(
        "pulumi_kubernetes", module_path, inputs, MappingProxyType(implied), False, secret
    )


def _crd(api_version: str, kind: str) -> tuple[str, PythonClass]:
    implied = MappingProxyType({"apiVersion": api_version, "kind": kind})
    return f"kubernetes:{api_version}:{kind}", PythonClass(
        "pulumi_kubernetes", "apiextensions.CustomResource", _OBJECT, implied, True
    )


_KUBERNETES: Mapping[str, PythonClass] = MappingProxyType(
    dict(
        [
            _kube("kubernetes:core/v1:Namespace", "core.v1.Namespace"),
            _kube(
                "kubernetes:core/v1:ServiceAccount",
                "core.v1.ServiceAccount",
                ("automountServiceAccountToken", "imagePullSecrets", "metadata", "secrets"),
            ),
            _kube("kubernetes:core/v1:Service", "core.v1.Service"),
            _kube(
                "kubernetes:core/v1:ConfigMap",
                "core.v1.ConfigMap",
                ("binaryData", "data", "immutable", "metadata"),
            ),
            _kube(
                "kubernetes:core/v1:Secret",
                "core.v1.Secret",
                ("data", "immutable", "metadata", "stringData", "type"),
                ("data", "stringData"),
            ),
            _kube("kubernetes:core/v1:PersistentVolumeClaim", "core.v1.PersistentVolumeClaim"),
            _kube("kubernetes:core/v1:LimitRange", "core.v1.LimitRange"),
            _kube("kubernetes:core/v1:ResourceQuota", "core.v1.ResourceQuota"),
            _kube("kubernetes:apps/v1:Deployment", "apps.v1.Deployment"),
            _kube("kubernetes:apps/v1:StatefulSet", "apps.v1.StatefulSet"),
            _kube("kubernetes:apps/v1:DaemonSet", "apps.v1.DaemonSet"),
            _kube("kubernetes:batch/v1:Job", "batch.v1.Job"),
            _kube("kubernetes:batch/v1:CronJob", "batch.v1.CronJob"),
            _kube(
                "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
                "autoscaling.v2.HorizontalPodAutoscaler",
            ),
            _kube("kubernetes:policy/v1:PodDisruptionBudget", "policy.v1.PodDisruptionBudget"),
            _kube("kubernetes:networking.k8s.io/v1:NetworkPolicy", "networking.v1.NetworkPolicy"),
            _kube("kubernetes:networking.k8s.io/v1:Ingress", "networking.v1.Ingress"),
            _kube(
                "kubernetes:rbac.authorization.k8s.io/v1:Role",
                "rbac.v1.Role",
                ("metadata", "rules"),
            ),
            _kube(
                "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                "rbac.v1.RoleBinding",
                ("metadata", "roleRef", "subjects"),
            ),
            _kube(
                "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
                "rbac.v1.ClusterRole",
                ("aggregationRule", "metadata", "rules"),
            ),
            _kube(
                "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
                "rbac.v1.ClusterRoleBinding",
                ("metadata", "roleRef", "subjects"),
            ),
            _kube(
                "kubernetes:scheduling.k8s.io/v1:PriorityClass",
                "scheduling.v1.PriorityClass",
                ("description", "globalDefault", "metadata", "preemptionPolicy", "value"),
            ),
            _crd("argoproj.io/v1alpha1", "Rollout"),
            _crd("argoproj.io/v1alpha1", "AnalysisTemplate"),
            _crd("monitoring.coreos.com/v1", "ServiceMonitor"),
            _crd("monitoring.coreos.com/v1", "PodMonitor"),
            _crd("monitoring.coreos.com/v1", "PrometheusRule"),
            _crd("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
            _crd("monitoring.coreos.com/v1alpha1", "PrometheusAgent"),
            _crd("external-secrets.io/v1", "ExternalSecret"),
            _crd("external-secrets.io/v1", "SecretStore"),
            _crd("security.istio.io/v1", "PeerAuthentication"),
            _crd("pipelines.kubeflow.org/v2beta1", "Pipeline"),
            _crd("pipelines.kubeflow.org/v2beta1", "PipelineVersion"),
            _crd("tensorboard.kubeflow.org/v1alpha1", "Tensorboard"),
        ]
    )
)

_AWS_SDK_SECRETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"pulumi:providers:aws": ("accessKey", "secretKey", "token")}
)
"""Outputs that pulumi_aws marks secret on its own (``additional_secret_outputs`` in the SDK's
constructor); the mock round trip of every row proves the list."""


def _aws(token: str, paths: tuple[str, str]) -> tuple[str, PythonClass]:
    name, args = paths
    return token, PythonClass(
        "pulumi_aws",
        name,
        tuple(sorted(aws.TYPES[args])),
        sdk_secret_outputs=_AWS_SDK_SECRETS.get(token, ()),
        args=args,
        outputs=MappingProxyType(dict(aws.OUTPUTS[token])),
    )


CLASSES: Mapping[str, PythonClass] = MappingProxyType(
    {**_KUBERNETES, **dict(_aws(token, paths) for token, paths in aws.RESOURCES.items())}
)
"""Every type token the printer knows: the Kubernetes rows above, then the generated AWS rows."""

EXPORTS: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "kubernetes:core/v1:Namespace": ("namespace", True),
        "kubernetes:core/v1:Service": ("services", False),
    }
)
"""Stack outputs: type token -> (output name, single). A *single* output is exported only when
the graph has exactly one resource of the type (its ``metadata.name``); otherwise the output maps
each resource's logical name to its ``metadata.name``."""

_COMPONENT_TOKEN = re.compile(r"[a-z][a-z0-9-]*:[a-z][A-Za-z0-9/.-]*:(?P<kind>[A-Z][A-Za-z0-9]*)")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def python_class(token: str) -> PythonClass:
    """The row for ``token``; :class:`UnknownTypeError` when the table has none."""
    try:
        return CLASSES[token]
    except KeyError:
        raise UnknownTypeError(token) from None


def keyword_of(wire_name: str) -> str:
    """The SDK's keyword argument for a top-level input: ``roleRef`` -> ``role_ref``."""
    return _CAMEL_BOUNDARY.sub("_", wire_name).lower()


def component_kind(token: str) -> str:
    """``Model`` for ``mlplane:index:Model``: the class name of a component in the program.

    Tokens come from a target's code, not from the spec; they are still checked against a strict
    pattern, because the kind becomes an identifier in the program.
    """
    match = _COMPONENT_TOKEN.fullmatch(token)
    if match is None:
        raise ProgramError(f"component type token {token!r} is not of the form pkg:module:Kind")
    return match.group("kind")


def variable_stem(token: str) -> str:
    """``horizontal_pod_autoscaler`` for any token ending in ``HorizontalPodAutoscaler``."""
    kind = token.rsplit(":", 1)[-1]
    stem = keyword_of(kind)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", stem):
        raise ProgramError(f"type token {token!r} does not end in a CamelCase kind")
    return stem
