"""The resource graph: what a target plans to create for one environment.

Each resource has a Pulumi type token (``kubernetes:apps/v1:Deployment``), a stable logical name
(unique in the graph, derived only from spec names so it never changes between builds), JSON-like
inputs, an optional parent component, explicit dependencies, Pulumi options, and the origin of
the spec element that produced it. The Pulumi program is printed from the graph, the plan diffs
two graphs, resource-level policies read graphs, and a test runs the printed program under
Pulumi's mock runtime and checks that it registers exactly this graph.

Inputs are plain JSON values (str, int, float, bool, None, lists, dicts with str keys). Three
markers (mappings with ``$`` keys) stand for values that exist only when the program runs:

- ``{"$secret": "<config key>"}`` (:func:`secret_ref`): a Pulumi secret read from the stack's
  secret config; the graph never holds a secret's value.
- ``{"$ref": "<logical name>", "$output": "<output>"}`` (:func:`ref`): an output of another
  resource of the graph, in wire form (``arn``, ``bucketDomainName``); the program reads it as
  ``<variable>.<snake_case attribute>``, and Pulumi makes the reading resource depend on it.
  :meth:`ResourceGraph.check` rejects a reference to a resource the graph does not have.
- ``{"$json": <JSON value>}`` (:func:`json_document`): the JSON text of a document (an IAM, KMS,
  bucket or topic policy) whose value may contain ``$ref`` markers (the ARN of another
  resource); the program prints it as ``pulumi.Output.json_dumps(<value>)``, also without refs,
  so every policy document reads as a data literal rather than an escaped string.

A resource is created by its type's default provider unless ``options.provider`` names a provider
resource of the graph (type token ``pulumi:providers:<package>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from functools import cached_property, partial
from operator import attrgetter
from types import MappingProxyType
from typing import Any, cast

from mlplane.compiler.core import canonical
from mlplane.compiler.core.diagnostics import Location
from mlplane.compiler.core.ir import Origin
from mlplane.compiler.core.resource_texts import GRAPH_JSON, text_of

GRAPH_FORMAT_VERSION = 1
GRAPH_FILE = "resources.json"
"""The name ``mlplane build`` writes a graph's :meth:`ResourceGraph.canonical_json` under, at the
root of an environment's output."""
SECRET_MARKER = "$secret"  # noqa: S105 (a marker key, not a password)
REF_MARKER = "$ref"
OUTPUT_KEY = "$output"
JSON_MARKER = "$json"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
_OUTPUT_NAME = re.compile(r"[a-z][A-Za-z0-9]{0,127}")
_LEAVES = (str, int, float)
_SCALAR_TYPES = frozenset({str, int, float, bool})


@dataclass(frozen=True, slots=True)
class ResourceOptions:
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()
    provider: str | None = None
    """The logical name of the provider resource (``pulumi:providers:aws``) that creates this
    resource; None: the default provider of its package, configured by the stack."""

    def to_json(self) -> dict[str, Any]:
        """``provider`` only when set, so graphs without explicit providers keep their bytes."""
        data: dict[str, Any] = {
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deleteBeforeReplace": self.delete_before_replace,
            "ignoreChanges": list(self.ignore_changes),
            "additionalSecretOutputs": list(self.additional_secret_outputs),
        }
        if self.provider is not None:
            data["provider"] = self.provider
        return data


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

    def references(self) -> tuple[str, ...]:
        """The resources whose outputs the inputs read through ``$ref`` markers, sorted; within
        :func:`remembered_walks`, from each input's :func:`walk`, kept for the emitters."""
        inputs = self.inputs
        memo = _WALKS.get()
        if memo is None or type(inputs) is not dict or not _MARKER_KEYS.isdisjoint(inputs):
            return tuple(sorted(references(inputs)))
        found: set[str] = set()
        for item in inputs.values():
            if type(item) in _SCALAR_TYPES or item is None:
                continue
            entry = memo.get(id(item))
            if entry is None or entry[0] is not item:
                entry = memo[id(item)] = (item, walk(item))
            found |= entry[1].references
        return tuple(sorted(found))

    def needs(self) -> tuple[str, ...]:
        """Every resource that must exist first: parent, dependencies, provider, references."""
        found = {*self.depends_on, *self.references()}
        found.update(n for n in (self.parent, self.options.provider) if n is not None)
        return tuple(sorted(found))

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


class Deferred:
    """A resource's inputs held in another form until first read.

    ``Resource.inputs`` is a property over the field's slot that loads a :class:`Deferred` the
    first time it is read and keeps what it gave. A unit of a lowering read back from a cache
    holds each resource's inputs pickled apart (``compiler/core/pickled.py``): a plan or a
    rebuild that takes the unit reads its resources' names, types, parents and needs, but not
    their inputs (their texts come from the cache as well: ``resource_texts``), so the inputs,
    about four fifths of a unit's bytes, are unpickled only for the resources something reads.
    Every other reader (equality, ``repr``, ``dataclasses.replace``, pickling) goes through
    the property and sees the loaded value."""

    __slots__ = ()

    def load(self) -> Mapping[str, Any]:
        raise NotImplementedError


_INPUTS_SLOT = Resource.__dict__["inputs"]
"""Where a resource keeps its inputs, or a :class:`Deferred` that gives them."""


def _read_inputs(resource: Resource) -> Mapping[str, Any]:
    value = _INPUTS_SLOT.__get__(resource, Resource)
    if isinstance(value, Deferred):
        value = value.load()
        _INPUTS_SLOT.__set__(resource, value)
    return cast(Mapping[str, Any], value)


setattr(Resource, "inputs", property(_read_inputs, _INPUTS_SLOT.__set__))  # noqa: B010


def fields_as_held(resource: Resource) -> tuple[Any, ...]:
    """``resource``'s fields in order, its inputs as held (a :class:`Deferred` still unread
    stays so): ``Resource(*fields_as_held(r))`` equals ``r``."""
    return (*_HEAD(resource), _INPUTS_SLOT.__get__(resource, Resource), *_TAIL(resource))


_NAMES = [f.name for f in fields(Resource)]
if _NAMES[2] != "inputs" or not all(f.init and not f.kw_only for f in fields(Resource)):
    raise ImportError("a Resource is no longer built from its fields in order, inputs third")
_HEAD, _TAIL = attrgetter(*_NAMES[:2]), attrgetter(*_NAMES[3:])


def deferred_inputs(resource: Resource) -> Deferred | None:
    """The :class:`Deferred` that ``resource`` holds instead of its inputs, if it still does."""
    value = _INPUTS_SLOT.__get__(resource, Resource)
    return value if isinstance(value, Deferred) else None


def _path_text(path: tuple[str | int, ...]) -> str:
    from mlplane.compiler.core.diagnostics import format_path

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

    @cached_property
    def needs(self) -> Mapping[str, tuple[str, ...]]:
        """Logical name -> :meth:`Resource.needs`, computed once (it walks every input); within
        :func:`known_needs`, a resource found there is not walked again."""
        known = _KNOWN_NEEDS.get()
        if not known:
            return MappingProxyType({r.name: r.needs() for r in self.resources})
        return MappingProxyType({r.name: _needs_of(r, known) for r in self.resources})

    def check(self) -> None:
        types: dict[str, str] = {}
        for resource in self.resources:
            if resource.name in types:
                raise GraphError(f"two resources are named {resource.name!r}")
            types[resource.name] = resource.type
        for resource in self.resources:
            missing = [d for d in self.needs[resource.name] if d not in types]
            if missing:
                raise GraphError(f"{resource.name!r} refers to unknown resources {missing}")
            provider = resource.options.provider
            if provider is not None and not types[provider].startswith(PROVIDER_TYPE_PREFIX):
                raise GraphError(
                    f"{resource.name!r} names {provider!r} as its provider, but that is a "
                    f"{types[provider]}"
                )

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    @cached_property
    def _by_name(self) -> Mapping[str, Resource]:
        return MappingProxyType({r.name: r for r in self.resources})

    def get(self, name: str) -> Resource | None:
        return self._by_name.get(name)

    @cached_property
    def _by_type(self) -> Mapping[str, tuple[Resource, ...]]:
        """Type token -> the resources of that type, in graph order: the graph rules ask for
        some twenty types, each a scan of every resource without it."""
        found: dict[str, list[Resource]] = {}
        for resource in self.resources:
            found.setdefault(resource.type, []).append(resource)
        return MappingProxyType({token: tuple(items) for token, items in found.items()})

    def of_type(self, token: str) -> list[Resource]:
        return list(self._by_type.get(token, ()))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": GRAPH_FORMAT_VERSION,
            "environment": self.environment,
            "target": self.target,
            "resources": [r.to_json() for r in self.resources],
        }

    def canonical_json(self) -> str:
        """Byte-stable JSON: sorted keys, two-space indent, ASCII, trailing newline.

        Each resource's text is :func:`resource_text`, taken through ``resource_texts.text_of``
        (a build reusing an earlier one's texts takes those of the resources it did not lower
        again), written indented for where it stands (:class:`canonical.Fragment`: the same
        bytes), so that the document is a join of the texts, none indented again."""
        document = {
            "version": GRAPH_FORMAT_VERSION,
            "environment": self.environment,
            "target": self.target,
            "resources": [
                canonical.Fragment(
                    None, text_of(GRAPH_JSON, r.name, partial(resource_text, r)), RESOURCE_AT
                )
                for r in self.resources
            ],
        }
        return canonical.canonical_json(document)


RESOURCE_AT = "\n" + 2 * canonical.INDENT
"""The line break and indentation of a resource's text in ``resources.json``: an item of the
``resources`` list, a value of the document's top mapping."""


def resource_text(resource: Resource) -> str:
    """The canonical JSON of one resource (``Resource.to_json``) as ``resources.json`` holds it
    (:data:`RESOURCE_AT`), without a final line break."""
    return canonical.canonical_text(resource.to_json(), RESOURCE_AT)


KnownNeeds = Mapping[int, tuple[Resource, tuple[str, ...]]]
"""``id(resource)`` -> (that very resource, its :meth:`Resource.needs`)."""
_KNOWN_NEEDS: ContextVar[KnownNeeds | None] = ContextVar("known_needs", default=None)


def unit_resources(unit: object) -> tuple[Resource, ...] | None:
    """The resources of a target's lowering unit (its ``resources``, a tuple of resources), or
    None for a unit without them in that shape (what a cache stores with a unit)."""
    resources = getattr(unit, "resources", None)
    if not isinstance(resources, tuple) or not all(isinstance(r, Resource) for r in resources):
        return None
    return resources


def needs_in(
    graph: ResourceGraph, resources: Iterable[Resource]
) -> tuple[tuple[str, ...], ...] | None:
    """The needs of ``resources`` as ``graph`` computed them, when each is the very resource of
    its name in ``graph``; else None (the lowering that takes them walks them again)."""
    resources = tuple(resources)
    if any(graph.get(r.name) is not r for r in resources):
        return None
    return tuple(graph.needs[r.name] for r in resources)


def add_known_needs(
    table: dict[int, tuple[Resource, tuple[str, ...]]],
    unit: object,
    needs: Sequence[Sequence[str]] | None,
) -> None:
    """Enter each resource of ``unit`` with the needs stored for it (:func:`needs_in`) in a
    :func:`known_needs` table, when there are as many as the unit has resources."""
    resources = unit_resources(unit)
    if needs is None or resources is None or len(resources) != len(needs):
        return
    for resource, found in zip(resources, needs, strict=True):
        table[id(resource)] = (resource, tuple(found))


@contextmanager
def known_needs(table: KnownNeeds) -> Iterator[None]:
    """Within: a graph built (:meth:`ResourceGraph.build`) or asked for its needs takes the
    needs of a resource from ``table`` when the resource *is* the one the table holds under its
    ``id`` (the table keeps it alive, so the ``id`` is not reused), instead of walking its
    inputs. Whoever fills the table vouches that each entry is that resource's
    :meth:`Resource.needs` (the plan cache stores them with a unit that reads back equal to the
    resources they were computed from; ``compiler/plan/base_entry.py``). The table may grow
    while it is in use. The check of the graph (unique names, known needs, providers) still
    runs on every resource."""
    token = _KNOWN_NEEDS.set(table)
    try:
        yield
    finally:
        _KNOWN_NEEDS.reset(token)


def _needs_of(resource: Resource, known: KnownNeeds) -> tuple[str, ...]:
    entry = known.get(id(resource))
    return entry[1] if entry is not None and entry[0] is resource else resource.needs()


def secret_ref(config_key: str) -> dict[str, str]:
    """An input that the program reads from Pulumi secret config at run time."""
    return {SECRET_MARKER: config_key}


def ref(resource: str, output: str) -> dict[str, str]:
    """An input that reads output ``output`` (wire form: ``arn``) of resource ``resource``."""
    marker = {REF_MARKER: resource, OUTPUT_KEY: output}
    output_ref(marker)
    return marker


def json_document(value: Any) -> dict[str, Any]:
    """An input holding the JSON text of ``value``, which may contain :func:`ref` markers."""
    return {JSON_MARKER: value}


def output_ref(value: Mapping[str, Any]) -> tuple[str, str] | None:
    """(resource, output) of a ``$ref`` marker, None for any other mapping.

    A mapping with a ``$ref`` key is always meant as a marker, so a malformed one (extra keys, a
    non-string name, an output that is not a camelCase wire name) is a :class:`GraphError`, not
    silently an ordinary mapping.
    """
    if REF_MARKER not in value:
        return None
    resource, output = value.get(REF_MARKER), value.get(OUTPUT_KEY)
    if set(value) != {REF_MARKER, OUTPUT_KEY} or not isinstance(resource, str) or not resource:
        raise GraphError(f"malformed output reference {dict(value)!a}")
    if not isinstance(output, str) or not _OUTPUT_NAME.fullmatch(output):
        raise GraphError(f"malformed output name in reference {dict(value)!a}")
    return resource, output


def is_json_document(value: Mapping[str, Any]) -> bool:
    """True for a ``{"$json": value}`` marker; a ``$json`` key beside others is a GraphError."""
    if JSON_MARKER not in value:
        return False
    if len(value) != 1:
        raise GraphError(f"malformed JSON document marker with keys {sorted(value)!a}")
    return True


def references(value: Any) -> set[str]:
    """The resource names that ``$ref`` markers anywhere inside ``value`` refer to; a malformed
    ``$ref`` or ``$json`` marker is a :class:`GraphError`.

    Iterative (an explicit stack), so a deep input cannot exhaust Python's recursion limit, and
    cheap on the common case (scalars are skipped by concrete type checks): every graph check
    walks every input.
    """
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:  # the common containers first, by exact type
            if REF_MARKER in item:
                found.add(cast(tuple[str, str], output_ref(item))[0])
                continue
            if JSON_MARKER in item:
                is_json_document(item)  # a malformed marker raises
            stack.extend(item.values())
            continue
        if kind is list:
            stack.extend(item)
            continue
        if kind in _SCALAR_TYPES or item is None or isinstance(item, _LEAVES):
            continue
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, Mapping):
            if REF_MARKER in item:
                found.add(cast(tuple[str, str], output_ref(item))[0])
                continue
            if JSON_MARKER in item:
                is_json_document(item)  # a malformed marker raises
            stack.extend(item.values())
    return found


@dataclass(frozen=True, slots=True)
class Walked:
    """What one walk of a value found (:func:`walk`)."""

    references: frozenset[str]
    """The resources its ``$ref`` markers name (each marker checked, as :func:`references`)."""
    secrets: tuple[Mapping[str, Any], ...]
    """Its ``$secret`` markers in the order met, not checked (the program's printer checks
    them: ``targets/pulumi_literals.py``)."""
    marked: bool
    """Whether it holds any marker."""


def walk(value: Any) -> Walked:
    """One walk of all of ``value`` for what both the graph and the program's printer ask of
    an input: the references (:func:`references`, with the same checks), the secret markers
    and whether any marker occurs. The walk goes below ``$ref`` and ``$json`` markers and stops
    at a ``$secret`` marker, meeting them in the order ``pulumi_literals`` does (an explicit
    stack, last in first out)."""
    found: set[str] = set()
    secrets: list[Mapping[str, Any]] = []
    marked = False
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALAR_TYPES or item is None:
            continue
        if kind is list or kind is tuple:
            stack.extend(item)
            continue
        if kind is not dict and not isinstance(item, Mapping):
            if isinstance(item, list | tuple):
                stack.extend(item)
            continue  # a subclass of a scalar, or an object no input holds
        if _MARKER_KEYS.isdisjoint(item):
            stack.extend(item.values())
            continue
        marked = True
        if REF_MARKER in item:
            found.add(cast(tuple[str, str], output_ref(item))[0])
        elif JSON_MARKER in item:
            is_json_document(item)  # a malformed marker raises
        else:
            secrets.append(item)
            if len(item) != 1 or type(item[SECRET_MARKER]) is not str:
                found |= references(item)  # malformed: what :func:`references` finds below
            continue
        stack.extend(item.values())
    return Walked(frozenset(found), tuple(secrets), marked)


_MARKER_KEYS = frozenset({SECRET_MARKER, REF_MARKER, JSON_MARKER})
_WALKS: ContextVar[dict[int, tuple[Any, Walked]] | None] = ContextVar("_WALKS", default=None)


@contextmanager
def remembered_walks() -> Iterator[None]:
    """Within: each input value a graph walks for its references (:meth:`Resource.references`)
    keeps its :func:`walk`, which :func:`walked` gives back, so the program's printer does not
    walk the same value again (``mlplane build``: lowering and emitting in one block, the
    values unchanged meanwhile). The memo holds the values, so their identities are not reused."""
    token = _WALKS.set({})
    try:
        yield
    finally:
        _WALKS.reset(token)


def walked(value: Any) -> Walked | None:
    """The :func:`walk` of the very object ``value`` kept within :func:`remembered_walks`, or
    None (not walked, or outside)."""
    memo = _WALKS.get()
    entry = memo.get(id(value)) if memo is not None else None
    return entry[1] if entry is not None and entry[0] is value else None


def origin_at(location: Location, path: tuple[str | int, ...]) -> Origin:
    return Origin(path, location)
