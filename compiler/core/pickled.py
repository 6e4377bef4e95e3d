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

:func:`encoded` gives bytes only when everything they name is what the allow-list reads back:
its pickler (``strict``) checks each class and function it writes by name, and the class of
each other object it writes, against the unpickler's own :meth:`Unpickler.find_class`, as it
writes them, and refuses the rest. What it writes then reads back equal, by construction: a
dataclass is rebuilt by its constructor from its fields, or from its pickled state; an
enumeration member by its value; a read-only mapping from a plain dict; anything else is a
builtin scalar or container, which pickle writes exactly. (It used to read every pickle back
and compare: a third of the cost of storing a lowering's units.) :func:`value` gives None for
any damage or refusal, never an error.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from operator import attrgetter
from types import BuiltinFunctionType, FunctionType, MappingProxyType
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
        """The inputs. They were stored only inside a unit whose every class the allow-list
        names (:func:`encoded`), under the entry's HMAC: failing to read them back would
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


class StrictPickler(Pickler):
    """A :class:`Pickler` that refuses (``PicklingError``) what :class:`Unpickler` would not
    read back (:func:`check_allowed`). Pickle asks ``reducer_override`` about every object but
    the builtin scalars and containers it writes itself, so JSON data never reaches the check."""

    def reducer_override(self, obj: Any) -> Any:
        check_allowed(obj)
        return NotImplemented


class UnitPickler(Pickler):
    """Writes a dataclass as a call of its class with its fields, in order, rather than as a
    state to set: read back, a frozen dataclass is built about twice as fast that way (its
    ``__setstate__`` asks for its fields again for every object). A class whose constructor does
    not take every field as is, by position (a field outside ``__init__`` or keyword-only, a
    ``__post_init__``) is pickled as usual. What to do with each type is worked out once
    (:func:`fields_getter`): units hold tens of thousands of objects of a few dozen types. A
    resource's inputs are written apart (:class:`PickledInputs`), their own bytes again when
    they were never read since they were read back."""

    def __init__(self, stream: io.BytesIO, *, strict: bool = False) -> None:
        super().__init__(stream)
        self.strict = strict
        """Refuse what the allow-list would not read back (:func:`check_allowed`), in a
        resource's inputs too (:class:`StrictPickler`)."""
        self._apart: tuple[io.BytesIO, StrictPickler] | None = None

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if self.strict and kind not in _PASSED:
            check_allowed(obj)
        if kind is Resource:
            held = fields_as_held(obj)
            return kind, (held[0], held[1], self._inputs(held[2]), *held[3:])
        getter = _GETTERS.get(kind, _UNKNOWN)
        if getter is _UNKNOWN:
            getter = _GETTERS[kind] = fields_getter(kind)
        if getter is None:
            return NotImplemented
        return kind, getter(obj)

    def _inputs(self, held: Any) -> PickledInputs:
        """:func:`_inputs_apart`; when strict, pickled by one :class:`StrictPickler` for all the
        resources of this pickle (its memo cleared for each: the bytes of a pickler of their
        own), since making a pickler costs more than checking JSON data, which never reaches
        the check."""
        if not self.strict or isinstance(held, PickledInputs):
            return _inputs_apart(held)
        if isinstance(held, Deferred):
            held = held.load()
        if self._apart is None:
            buffer = io.BytesIO()
            self._apart = buffer, StrictPickler(buffer)
        buffer, pickler = self._apart
        buffer.seek(0)
        buffer.truncate()
        pickler.clear_memo()
        pickler.dump(held)
        return PickledInputs(buffer.getvalue())


_UNKNOWN: Any = object()
_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}
"""Type -> what gives an object's constructor arguments (None: pickled as usual)."""


def fields_getter(kind: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """For a dataclass whose generated constructor takes every field as is, by position (no
    field outside ``__init__`` or keyword-only, no ``__post_init__``, no ``__init__`` of its
    own), a function giving an object's fields in order, as a tuple: ``kind(*getter(obj))`` is
    a copy of ``obj``. None for any other type (a class itself is of type ``type``: not a
    dataclass)."""
    if not is_dataclass(kind) or hasattr(kind, "__post_init__"):
        return None
    if not kind.__dataclass_params__.init:  # type: ignore[attr-defined]  # its own __init__
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


def dumped(obj: object, *, strict: bool = False) -> bytes | None:
    """``obj`` pickled by :class:`UnitPickler`, or None when it cannot be (``strict``: or
    would not read back, :func:`check_allowed`)."""
    buffer = io.BytesIO()
    try:
        UnitPickler(buffer, strict=strict).dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return None
    except RuntimeError:  # inputs held pickled apart that do not read back (``PickledInputs``)
        return None
    return buffer.getvalue()


def encoded(obj: object) -> bytes | None:
    """``obj`` pickled (:func:`dumped`), or None (not stored) when it cannot be or holds
    anything the allow-list would not read back (the module's documentation)."""
    return dumped(obj, strict=True)


def check_allowed(obj: Any) -> None:
    """Raise ``PicklingError`` unless :class:`Unpickler` reads ``obj`` back as pickle writes
    it: a class or a function (written by name) must be what :meth:`Unpickler.find_class`
    gives for that name; any other object (written as a call of its class, or as a name
    its ``__reduce__`` gives) must be a read-only mapping or of such a class. The verdicts
    are remembered: a unit holds tens of thousands of objects of a few dozen classes."""
    named = isinstance(obj, type | FunctionType | BuiltinFunctionType)
    key = obj if named else type(obj)
    verdict = _VERDICTS.get((named, key))
    if verdict is None:
        if named:
            verdict = _named(obj)
        else:
            verdict = key is MappingProxyType or _named(key)
            if verdict:
                _PASSED.add(key)
        _VERDICTS[named, key] = verdict
    if not verdict:
        raise pickle.PicklingError(f"{obj!r:.80} would not be read back from a cache entry")


def _named(obj: Any) -> bool:
    """Whether the allow-list reads back the class or function ``obj`` by its name."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(name, str):
        return False
    try:
        return _CHECKER.find_class(module, name) is obj
    except Exception:  # refused, or not found under that name
        return False


_VERDICTS: dict[tuple[bool, Any], bool] = {}
"""(written by name, the object or the class of the object) -> :func:`check_allowed`'s
verdict."""
_PASSED: set[type] = set()
"""The classes whose objects (not written by name) passed :func:`check_allowed`: a
:class:`UnitPickler` asks no more about them."""


_CHECKER = Unpickler(io.BytesIO(b""), fix_imports=False)
"""An unpickler that reads nothing: :func:`check_allowed` asks its :meth:`~Unpickler.find_class`."""


def value(data: bytes) -> object:
    """What ``data`` holds, read with the allow-list; None for any damage or refusal."""
    try:
        return Unpickler(io.BytesIO(data)).load()
    except Exception:  # any damage or refusal means no value, never an error
        return None
