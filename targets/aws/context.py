"""The state of one AWS lowering: the system, the diagnostics, and the resources built so far.

Builders are small functions that take a ``Lowering`` and add resources to it; ``add`` fills in
what every AWS resource shares (the environment's explicit provider, the parent component, the
origin of the spec element that produced it), so no builder repeats that bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics, Location, SpecPath
from mlplane.compiler.core.graph import Resource, ResourceOptions
from mlplane.compiler.core.ir import Origin
from mlplane.targets.aws import names

CLASSIFICATION_RANK = {"public": 0, "internal": 1, "confidential": 2, "pii": 3, "phi": 4}
DEFAULT_TIER = "internal"
"""The key tier of a model that reads no classified data (its logs and volumes)."""


@dataclass
class Lowering:
    system: ir.System
    diagnostics: Diagnostics
    resources: list[Resource] = field(default_factory=list)
    key_users: dict[str, list[str]] = field(default_factory=dict)
    """Per key tier, the logical names of the roles that use the key (its key policy names them)."""

    @property
    def provider(self) -> str:
        return names.provider(self.system)

    @property
    def environment(self) -> ir.Environment:
        return self.system.environment

    def origin(self, path: SpecPath) -> Origin:
        """The origin of ``path``, or of its nearest ancestor written in the spec."""
        return self.system.origin_of(path)

    def location(self, path: SpecPath) -> Location:
        return self.origin(path).location

    def add(
        self,
        token: str,
        logical_name: str,
        inputs: dict[str, Any],
        origin: Origin,
        parent: str | None,
        depends_on: tuple[str, ...] = (),
        *,
        protect: bool = False,
        retain_on_delete: bool = False,
        delete_before_replace: bool = False,
    ) -> str:
        """Add one AWS resource through the environment's provider; returns its logical name."""
        flags = ResourceOptions(
            protect=protect,
            retain_on_delete=retain_on_delete,
            delete_before_replace=delete_before_replace,
            provider=self.provider,
        )
        self.resources.append(
            Resource(
                type=token,
                name=logical_name,
                inputs=inputs,
                origin=origin,
                parent=parent,
                depends_on=tuple(dict.fromkeys(depends_on)),
                options=flags,
            )
        )
        return logical_name

    def add_component(
        self, logical_name: str, token: str, origin: Origin, parent: str | None
    ) -> None:
        self.resources.append(
            Resource(token, logical_name, {}, origin, parent=parent, component=True)
        )

    def tags(self, **extra: str) -> dict[str, str]:
        """Tags beyond the provider's default tags (classification, model, data source)."""
        return dict(sorted(extra.items()))


def tier_of(classifications: list[str]) -> str:
    """The highest classification of ``classifications`` (``internal`` when there is none)."""
    return max(classifications, key=CLASSIFICATION_RANK.__getitem__, default=DEFAULT_TIER)


def model_tier(system: ir.System, model: ir.Model) -> str:
    """The classification of what a model sees: the highest of every source it reads."""
    return tier_of([system.data_sources[name].classification for name in model.upstream])
