"""The state of one lowering: the system, the diagnostics, and the resources built so far.

Builders are small functions that take a ``Lowering`` and add resources to it; this class
turns a Kubernetes object body into a graph ``Resource`` (type token, logical name, origin,
parent, dependencies) so that no builder repeats that bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics, Location, SpecPath
from mlplane.compiler.core.graph import Resource, ResourceOptions
from mlplane.compiler.core.ir import Origin
from mlplane.targets.kubernetes import names

CORE_GROUP = "v1"


def _grouped(
    allows: tuple[ir.NetworkAllow, ...], end: Callable[[ir.NetworkAllow], str]
) -> dict[str, tuple[ir.NetworkAllow, ...]]:
    found: dict[str, list[ir.NetworkAllow]] = {}
    for allow in allows:
        found.setdefault(end(allow), []).append(allow)
    return {text: tuple(group) for text, group in found.items()}


def type_token(api_version: str, kind: str) -> str:
    """The Pulumi type token of a Kubernetes kind (``kubernetes:apps/v1:Deployment``).

    Custom resources use the same shape (``kubernetes:argoproj.io/v1alpha1:Rollout``), which is
    the token ``pulumi_kubernetes.apiextensions.CustomResource`` registers.
    """
    group_version = "core/v1" if api_version == CORE_GROUP else api_version
    return f"kubernetes:{group_version}:{kind}"


@dataclass(frozen=True, slots=True)
class Claim:
    """A Kubernetes object name taken in the namespace, for the collision check."""

    kind: str
    name: str
    origin: Origin


@dataclass
class Lowering:
    system: ir.System
    diagnostics: Diagnostics
    resources: list[Resource] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)
    """``id`` of each resource of a unit taken from an earlier lowering (``reuse.py``): a
    lowering that stored the unit had checked its label values (``checks.check_names``)."""

    @property
    def namespace(self) -> str:
        return self.system.environment.namespace

    @property
    def namespace_resource(self) -> str:
        return names.logical(self.system.name, "namespace")

    @cached_property
    def allows_from(self) -> Mapping[str, tuple[ir.NetworkAllow, ...]]:
        """``security.network.allow`` entries by the text of their source, in spec order.

        Built once per lowering: each model looks up its own entries here instead of scanning
        every entry, which made network policies quadratic in the size of the system."""
        return _grouped(self.system.security.allow, lambda allow: allow.source)

    @cached_property
    def slas_by_subject(self) -> Mapping[str, frozenset[str]]:
        """Model name -> the SLAs whose subject it is (what a model's unit reads of the SLAs:
        ``reuse.model_reads``), built once per lowering."""
        found: dict[str, set[str]] = {}
        for name, sla in self.system.slas.items():
            if sla.subject_kind == "model" and sla.subject is not None:
                found.setdefault(sla.subject, set()).add(name)
        return {model: frozenset(names) for model, names in found.items()}

    @cached_property
    def allows_to(self) -> Mapping[str, tuple[ir.NetworkAllow, ...]]:
        """The same entries by the text of their destination (see :attr:`allows_from`)."""
        return _grouped(self.system.security.allow, lambda allow: allow.destination)

    def origin(self, path: SpecPath) -> Origin:
        """The origin of ``path``, or of its nearest ancestor written in the spec."""
        return self.system.origin_of(path)

    def location(self, path: SpecPath) -> Location:
        return self.origin(path).location

    def metadata(self, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
        """Object metadata in this environment's namespace (never ``default``)."""
        return {"name": name, "namespace": self.namespace, "labels": dict(labels)}

    def add(
        self,
        logical_name: str,
        body: dict[str, Any],
        origin: Origin,
        parent: str,
        depends_on: tuple[str, ...] = (),
        *,
        claim: bool = True,
        ignore_changes: tuple[str, ...] = (),
    ) -> Resource:
        """Add one Kubernetes object; namespaced objects depend on the namespace resource.
        ``claim=False`` for an object in another namespace (the monitoring namespace), whose
        name cannot collide with this namespace's objects. ``ignore_changes``: fields a
        controller in the cluster owns after creation (with server-side apply the provider then
        leaves them out of its patch while another field manager holds them)."""
        api_version, kind = body["apiVersion"], body["kind"]
        needs = depends_on
        if kind != "Namespace":
            needs = (self.namespace_resource, *depends_on)
        resource = Resource(
            type=type_token(api_version, kind),
            name=logical_name,
            inputs=body,
            origin=origin,
            parent=parent,
            depends_on=tuple(dict.fromkeys(needs)),
            options=ResourceOptions(ignore_changes=ignore_changes),
        )
        self.resources.append(resource)
        if claim:
            self.claims.append(Claim(kind, body["metadata"]["name"], origin))
        return resource

    def add_component(
        self, logical_name: str, token: str, origin: Origin, parent: str | None
    ) -> None:
        self.resources.append(
            Resource(token, logical_name, {}, origin, parent=parent, component=True)
        )

    def claim(self, kind: str, name: str, origin: Origin) -> None:
        """Record a name used by an object this target does not create (an existing Secret)."""
        self.claims.append(Claim(kind, name, origin))
