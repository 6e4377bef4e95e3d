"""The resource graph: what a target plans to create for one environment.

Each resource has a Pulumi type token (``kubernetes:apps/v1:Deployment``), a stable logical name
(unique in the graph, derived only from spec names so it never changes between builds), JSON-like
inputs, an optional parent component, explicit dependencies, Pulumi options, and the origin of
the spec element that produced it. The Pulumi program is printed from the graph, the plan diffs
two graphs, resource-level policies read graphs, and a test runs the printed program under
Pulumi's mock runtime and checks that it registers exactly this graph.

Inputs are plain JSON values (str, int, float, bool, None, lists, dicts with str keys). A value
that must be a Pulumi secret at run time is a ``{"$secret": "<config key>"}`` marker: the graph
never holds a secret's value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlplane.compiler.diagnostics import Location
from mlplane.compiler.ir import Origin

GRAPH_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ResourceOptions:
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "ignoreChanges": list(self.ignore_changes),
            "additionalSecretOutputs": list(self.additional_secret_outputs),
        }


@dataclass(frozen=True, slots=True)
class Resource:
    type: str
    name: str
    inputs: Mapping[str, Any]
    origin: Origin
    parent: str | None = None
    depends_on: tuple[str, ...] = ()
    options: ResourceOptions = field(default_factory=ResourceOptions)
    component: bool = False
    """A component resource (a grouping node in ``pulumi preview``), not a provider resource."""

    def to_json(self) -> dict[str, Any]:
        location = self.origin.location
        return {
            "type": self.type,
            "name": self.name,
            "component": self.component,
            "parent": self.parent,
            "dependsOn": sorted(self.depends_on),
            "options": self.options.to_json(),
            "inputs": self.inputs,
            "origin": {
                "path": _path_text(self.origin.path),
                "file": location.file,
                "line": location.line,
                "column": location.column,
            },
        }


def _path_text(path: tuple[str | int, ...]) -> str:
    from mlplane.compiler.diagnostics import format_path

    return format_path(path)


class GraphError(ValueError):
    """The graph is inconsistent (duplicate names, dangling parents or dependencies): a bug in a
    target, never a user's mistake."""


@dataclass(frozen=True)
class ResourceGraph:
    """Resources in a deterministic order (components first, then by name)."""

    environment: str
    target: str
    resources: tuple[Resource, ...]

    @classmethod
    def build(cls, environment: str, target: str, resources: Iterable[Resource]) -> ResourceGraph:
        items = sorted(resources, key=lambda r: (not r.component, r.name))
        graph = cls(environment, target, tuple(items))
        graph.check()
        return graph

    def check(self) -> None:
        names: set[str] = set()
        for resource in self.resources:
            if resource.name in names:
                raise GraphError(f"two resources are named {resource.name!r}")
            names.add(resource.name)
        for resource in self.resources:
            missing = [d for d in (resource.parent, *resource.depends_on) if d is not None and d not in names]
            if missing:
                raise GraphError(f"{resource.name!r} refers to unknown resources {missing}")

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def get(self, name: str) -> Resource | None:
        return next((r for r in self.resources if r.name == name), None)

    def of_type(self, token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == token]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": GRAPH_FORMAT_VERSION,
            "environment": self.environment,
            "target": self.target,
            "resources": [r.to_json() for r in self.resources],
        }

    def canonical_json(self) -> str:
        """Byte-stable JSON: sorted keys, two-space indent, ASCII, trailing newline."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def secret_ref(config_key: str) -> dict[str, str]:
    """An input that the program reads from Pulumi secret config at run time."""
    return {"$secret": config_key}


def origin_at(location: Location, path: tuple[str | int, ...]) -> Origin:
    return Origin(path, location)
