"""Resource tables that parse a resource only when it is looked up.

A warm plan reads the base's graph from the plan cache as its compact canonical JSON (tens of
megabytes for a large spec) and, for a one-line change, the head takes almost every resource
from the base unchanged (``lower.graph_reusing``). Parsing the whole text would cost more than
everything the plan then does with it: the diff skips the resources the head shares with the
base (equal by construction), and the SLAs' alert counts of the base were counted when its
entry was stored. So:

* :class:`TextResources`: a graph's resources by name, in graph order, each parsed from its
  span of the canonical text (``lower.text_spans``, checked when the entry was stored to
  rebuild the text exactly) when first looked up, its spec file renamed for display, and the
  graph's alert counts by SLA as counted from the same resources;
* :class:`SharedResources`: the head's resources, in graph order: those lowered now, and the
  names of those taken from the base unchanged, looked up in the base's table.

Both are read-only mappings equal to the dictionaries they stand for (tests compare them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from mlplane.compiler.plan.model import ResourceJson

Spans = Mapping[str, tuple[int, int]]


class TextResources(Mapping[str, ResourceJson]):
    """Resources by name in the order of ``spans``, each the JSON value of its span of
    ``text`` (ASCII bytes) with its origin's file renamed by ``rename``, parsed on first
    lookup.

    ``alerts`` must be :func:`count_alerts` of every resource (what ``alert_counts`` gives)."""

    def __init__(
        self,
        text: bytes | memoryview,
        spans: Spans,
        rename: Callable[[str], str],
        alerts: Mapping[str, int],
    ) -> None:
        self._text = text
        self._spans = spans
        self._rename = rename
        self._values: dict[str, ResourceJson] = {}
        self.alerts = dict(alerts)

    def __getitem__(self, name: str) -> ResourceJson:
        found = self._values.get(name)
        if found is None:
            start, end = self._spans[name]
            value: ResourceJson = json.loads(bytes(self._text[start:end]))
            found = self._values[name] = renamed(value, self._rename)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._spans

    def __iter__(self) -> Iterator[str]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


class SharedResources(Mapping[str, ResourceJson]):
    """The head's resources by name in graph order (``names``): its ``own`` values, and for
    every other name the value of ``base`` (a resource taken from the base unchanged, so equal
    to the one the base holds)."""

    def __init__(
        self,
        names: Iterable[str],
        own: Mapping[str, ResourceJson],
        base: Mapping[str, ResourceJson],
    ) -> None:
        self._names = dict.fromkeys(names)
        self._own = own
        self.base = base
        if not own.keys() <= self._names.keys():
            raise ValueError("a resource of the head is not among its names")

    @property
    def own(self) -> Mapping[str, ResourceJson]:
        """The resources lowered for the head (every other one is the base's)."""
        return self._own

    def shares(self, name: str, base: Mapping[str, ResourceJson]) -> bool:
        """Whether this table's ``name`` is ``base``'s own value of it (so equal to it)."""
        return base is self.base and name in self._names and name not in self._own

    def __getitem__(self, name: str) -> ResourceJson:
        found = self._own.get(name)
        if found is not None:
            return found
        if name not in self._names:
            raise KeyError(name)
        return self.base[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def alert_counts(self) -> dict[str, int]:
        """:func:`count_alerts` of every resource, from the base's counts: those of the base's
        resources this table does not share taken off, those of its own added."""
        counts = Counter(alert_counts(self.base))
        counts.subtract(
            count_alerts(self.base[n] for n in self.base if not self.shares(n, self.base))
        )
        counts.update(count_alerts(self._own.values()))
        return {slo: count for slo, count in counts.items() if count > 0}


def alert_counts(resources: Mapping[str, ResourceJson]) -> dict[str, int]:
    """Alerting rules per SLA (label ``slo``) in ``resources``' PrometheusRule resources."""
    if isinstance(resources, TextResources):
        return dict(resources.alerts)
    if isinstance(resources, SharedResources):
        return resources.alert_counts()
    return dict(count_alerts(resources.values()))


def count_alerts(resources: Iterable[ResourceJson]) -> Counter[str]:
    """Alerting rules per SLA (label ``slo``) in the PrometheusRule resources among
    ``resources``; none when the target puts no rules in its graph."""
    counts: Counter[str] = Counter()
    for resource in resources:
        if not str(resource.get("type", "")).endswith(":PrometheusRule"):
            continue
        spec: Any = (resource.get("inputs") or {}).get("spec") or {}
        for group in spec.get("groups") or ():
            for rule in group.get("rules") or ():
                slo = (rule.get("labels") or {}).get("slo")
                if "alert" in rule and isinstance(slo, str):
                    counts[slo] += 1
    return counts


def renamed(resource: ResourceJson, rename: Callable[[str], str]) -> ResourceJson:
    """``resource`` with its origin's file renamed (what ``build`` does to write outputs that
    do not depend on the working directory)."""
    origin = resource.get("origin")
    if not isinstance(origin, dict) or not isinstance(origin.get("file"), str):
        return resource
    return {**resource, "origin": {**origin, "file": rename(origin["file"])}}
