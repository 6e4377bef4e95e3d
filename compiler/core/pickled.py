"""Pickling what mlplane's caches store (units of a lowering, a plan's base side) and what a
forked plan side sends back, and reading it back under an allow-list.

* :class:`Pickler` pickles the read-only mappings the system model holds (``MappingProxyType``,
  which pickle cannot name) as a call of :func:`read_only` with a plain dict, through its own
  dispatch table (:data:`DISPATCH`): no global registration.
* :class:`UnitPickler` also writes a dataclass as a call of its class with its fields, in order,
  rather than as a state to set: read back, a frozen dataclass is built about twice as fast that
  way, and units and system models hold tens of thousands of them. A resource's inputs are
  pickled apart, as the bytes of a :class:`PickledInputs`, and unpickled only when something
  reads them (``graph.Deferred``): a plan or a rebuild reads the inputs of few of the resources
  it takes from a cache.
* :class:`Unpickler` allows only dataclasses and enumerations of mlplane's and the installed
  plug-ins' modules (``sealed.plugin_packages``), a few builtin containers and :func:`read_only`;
  anything else (any other function or class) is refused. A cache reads only entries whose HMAC
  checked out (``compiler/core/sealed.py``), so only this user's mlplane wrote them: the
  allow-list is a second wall, not the first.

:func:`encoded` gives bytes only when they read back equal to what was pickled; :func:`value`
gives None for any damage or refusal, never an error.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from mlplane.compiler.core.graph import Deferred, Resource, fields_as_held
from mlplane.compiler.core.sealed import plugin_packages


def read_only(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    """Rebuilds a pickled ``MappingProxyType`` (whose class pickle cannot name)."""
    return MappingProxyType(items)


def _proxy_reduction(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return read_only, (dict(proxy),)


DISPATCH: dict[Any, Any] = {**copyreg.dispatch_table, MappingProxyType: _proxy_reduction}
"""Pickles the read-only mappings the system model holds, for this module's picklers only."""

_BUILTINS = frozenset({"frozenset", "set", "tuple", "list", "dict", "complex", "bytes", "slice"})
_FUNCTIONS = frozenset({(read_only.__module__, read_only.__name__)})
"""The one function an allowed pickle calls: the read-only mappings of the system model are
rebuilt."""


class Pickler(pickle.Pickler):
    """The highest protocol, with :data:`DISPATCH`."""

    def __init__(self, stream: io.BytesIO) -> None:
        super().__init__(stream, protocol=pickle.HIGHEST_PROTOCOL)
        self.dispatch_table = DISPATCH


@dataclass(frozen=True, slots=True)
class PickledInputs(Deferred):
    """A resource's inputs pickled apart within a unit's pickle (:class:`UnitPickler`), read
    with the allow-list when first needed (``graph.Deferred``)."""

    data: bytes

    def load(self) -> Mapping[str, Any]:
        """The inputs. They were stored only inside a unit that read back equal to what was
        pickled (:func:`encoded`), under the entry's HMAC: failing to read them back would
        mean damage the checks cannot let through, and a build or a plan stops rather than
        carry on with other inputs."""
        found = value(self.data)
        if not isinstance(found, Mapping):
            raise RuntimeError("a cached resource's inputs do not read back")
        return found


def _inputs_apart(held: Any) -> PickledInputs:
    """A resource's inputs as held (``graph.fields_as_held``) as :class:`PickledInputs` (their
    own bytes again when they were never loaded since they were read back)."""
    if isinstance(held, PickledInputs):
        return held
    if isinstance(held, Deferred):
        held = held.load()
    try:
        return PickledInputs(pickle.dumps(held, pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError):  # a read-only mapping inside: named by DISPATCH
        buffer = io.BytesIO()
        Pickler(buffer).dump(held)
        return PickledInputs(buffer.getvalue())


class UnitPickler(Pickler):
    """Writes a dataclass as a call of its class with its fields, in order, rather than as a
    state to set: read back, a frozen dataclass is built about twice as fast that way (its
    ``__setstate__`` asks for its fields again for every object). A class whose constructor does
    not take every field as is, by position (a field outside ``__init__`` or keyword-only, a
    ``__post_init__``) is pickled as usual. What to do with each type is worked out once
    (:func:`fields_getter`): units hold tens of thousands of objects of a few dozen types. A
    resource's inputs are written apart (:class:`PickledInputs`), their own bytes again when
    they were never read since they were read back."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is Resource:
            held = fields_as_held(obj)
            return kind, (held[0], held[1], _inputs_apart(held[2]), *held[3:])
        getter = _GETTERS.get(kind, _UNKNOWN)
        if getter is _UNKNOWN:
            getter = _GETTERS[kind] = fields_getter(kind)
        if getter is None:
            return NotImplemented
        return kind, getter(obj)


_UNKNOWN: Any = object()
_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}
"""Type -> what gives an object's constructor arguments (None: pickled as usual)."""


def fields_getter(kind: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """For a dataclass whose constructor takes every field as is, by position (no field outside
    ``__init__`` or keyword-only, no ``__post_init__``), a function giving an object's fields in
    order, as a tuple: ``kind(*getter(obj))`` is a copy of ``obj``. None for any other type (a
    class itself is of type ``type``: not a dataclass)."""
    if not is_dataclass(kind) or hasattr(kind, "__post_init__"):
        return None
    found = fields(kind)
    if not all(f.init and not f.kw_only for f in found):
        return None
    if not found:
        return lambda _: ()
    getter = attrgetter(*(f.name for f in found))
    if len(found) == 1:
        return lambda obj: (getter(obj),)
    return getter


_ALLOWED: dict[tuple[str, str], Any] = {}
"""What :meth:`Unpickler.find_class` allowed, by (module, name): each unit is read by an
unpickler of its own, and thousands of them name the same few dozen classes."""


class Unpickler(pickle.Unpickler):
    """Reads only what the allow-list names (the module's docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            found = _ALLOWED[module, name] = self._allowed(module, name)
        return found

    def _allowed(self, module: str, name: str) -> Any:
        top = module.split(".", maxsplit=1)[0]
        if (module, name) in _FUNCTIONS:
            return super().find_class(module, name)
        if module == "builtins" and name in _BUILTINS:
            return super().find_class(module, name)
        if top == "mlplane" or top in plugin_packages():
            found = super().find_class(module, name)
            if isinstance(found, type) and (is_dataclass(found) or issubclass(found, Enum)):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a cache entry")


def dumped(obj: object) -> bytes | None:
    """``obj`` pickled by :class:`UnitPickler`, or None when it cannot be."""
    buffer = io.BytesIO()
    try:
        UnitPickler(buffer).dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return None
    return buffer.getvalue()


def encoded(obj: object) -> bytes | None:
    """``obj`` pickled (:func:`dumped`), or None (not stored) when it cannot be or would not
    read back equal."""
    data = dumped(obj)
    if data is None:
        return None
    try:
        return data if value(data) == obj else None
    except RuntimeError:  # a resource's inputs pickled apart do not read back
        return None


def value(data: bytes) -> object:
    """What ``data`` holds, read with the allow-list; None for any damage or refusal."""
    try:
        return Unpickler(io.BytesIO(data)).load()
    except Exception:  # any damage or refusal means no value, never an error
        return None
