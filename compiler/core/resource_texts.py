"""Texts that emitters write per resource, taken from an earlier build when the resource is the
same.

Some output is a join of texts each of which is a pure function of one resource of the graph,
whatever stands around it: a resource's canonical JSON in ``resources.json``, a Kubernetes
object's YAML document in ``manifests/``, a PrometheusRule's group in ``monitoring/rules.yaml``,
the arguments of a resource's statement in the Pulumi program (when they name no other
resource's variable), the secret config keys a resource's inputs read. An emitter asks
:func:`text_of` for such a text by a *kind* (which text of the resource: :data:`GRAPH_JSON`, or
a kind of the target's own) and the resource's logical name, with the function that computes
it. Outside :func:`reusing` that function is called. Inside, a text of ``known`` is taken
instead, and every text given is recorded in ``made`` (for a later build's ``known``).

Whoever fills ``known`` vouches that each resource named there is equal, field for field, to
the resource the text was computed from: the build cache (``compiler/build/cache.py``) gives the
texts of the lowering units it took, whose key covers everything the unit's resources are made
from. A text's function must read nothing but its resource.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

GRAPH_JSON = "graph-json-item"
"""The kind of a resource's canonical JSON (``ResourceGraph.canonical_json``), written indented
as it stands in ``resources.json`` (``graph.RESOURCE_AT``)."""

Texts = Mapping[str, Mapping[str, str]]
"""Kind -> logical name -> text."""


@dataclass
class ResourceTexts:
    """The texts a build may take (``known``) and those it gave (``made``), by kind and name."""

    known: Texts = field(default_factory=dict)
    made: dict[str, dict[str, str]] = field(default_factory=dict)
    taken: int = 0


_ACTIVE: ContextVar[ResourceTexts | None] = ContextVar("resource_texts", default=None)


@contextmanager
def reusing(texts: ResourceTexts) -> Iterator[ResourceTexts]:
    """Within: :func:`text_of` takes from ``texts.known`` and records into ``texts.made``."""
    token = _ACTIVE.set(texts)
    try:
        yield texts
    finally:
        _ACTIVE.reset(token)


def active() -> bool:
    """Whether :func:`reusing` is in force (outside it, :func:`text_of` only computes)."""
    return _ACTIVE.get() is not None


def text_of(kind: str, name: str, compute: Callable[[], str]) -> str:
    """The ``kind`` text of the resource ``name``: ``compute()``, or inside :func:`reusing` the
    known text when there is one; asked again within the same :func:`reusing` (whose names are
    those of one graph), the text it gave the first time."""
    active = _ACTIVE.get()
    if active is None:
        return compute()
    made = active.made.get(kind)
    if made is None:
        made = active.made[kind] = {}
    found = made.get(name)
    if found is not None:
        return found
    found = active.known.get(kind, _NONE).get(name)
    if found is None:
        found = compute()
    else:
        active.taken += 1
    made[name] = found
    return found


_NONE: Mapping[str, str] = {}
