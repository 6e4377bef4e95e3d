"""Which fields of a resource changed outside git, from the engine's refresh of its state.

``pulumi refresh`` reads each resource back from the cloud or cluster and reports an ``update``
step when what it read differs from the recorded state, but its step events carry no property
names for a refresh. This module names them: it compares the recorded and the refreshed state,
field by field, as Pulumi property paths (``spec.ingress[0].ports[0].port``).

For Kubernetes resources the provider keeps the declared object under ``__inputs`` and, on
refresh, overwrites it with the live values of the declared fields, so comparing the two
``__inputs`` names exactly the declared fields that changed. That copy is cut to the declared
shape, lists included: an element added out of band to a declared list (a second ingress rule
of a NetworkPolicy) is not in it. The refreshed live object (the outputs) still holds it, so
every declared list is also compared with the live list at the same path, and each element
beyond the declared ones is named (``spec.ingress[1]``). The engine's own diff uses the cut
copy too, so an apply does not remove such an element (``README.md``, "Drift"): drift keeps
naming it until it is gone. For other resources the outputs are compared,
without the bookkeeping the server changes on every write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

MAX_PATHS = 20
"""At most this many paths per resource (a replaced list would otherwise list every element)."""

_INPUTS = "__inputs"
_BOOKKEEPING = frozenset(
    {"metadata.resourceVersion", "metadata.managedFields", "metadata.generation", "status"}
)
"""Server-maintained fields that change without anyone changing the resource."""


def changed_paths(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Property paths whose values differ between the recorded and the refreshed outputs."""
    if old is None or new is None:
        return ()
    paths: Iterator[str]
    if isinstance(old.get(_INPUTS), Mapping) and isinstance(new.get(_INPUTS), Mapping):
        declared = old[_INPUTS]
        paths = chain(_walk(declared, new[_INPUTS], ""), _grown(declared, new, ""))
    else:
        paths = _walk(old, new, "")
    found: list[str] = []
    for path in dict.fromkeys(paths):
        if path.startswith("__") or _bookkeeping(path):
            continue
        found.append(path)
        if len(found) == MAX_PATHS:
            break
    return tuple(found)


def _bookkeeping(path: str) -> bool:
    return any(
        path == field or path.startswith((field + ".", field + "[")) for field in _BOOKKEEPING
    )


def _walk(before: Any, after: Any, path: str) -> Iterator[str]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                yield child
            else:
                yield from _walk(before[key], after[key], child)
    elif isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            child = f"{path}[{index}]"
            if index >= len(before) or index >= len(after):
                yield child
            else:
                yield from _walk(before[index], after[index], child)
    elif before != after:
        yield path or "(the whole value)"


def _grown(declared: Any, live: Any, path: str) -> Iterator[str]:
    """Elements of the live object's lists beyond those declared, at every list the resource
    declares (the declared copy cannot show them: the provider cuts it to shape)."""
    if isinstance(declared, Mapping) and isinstance(live, Mapping):
        for key in sorted(declared, key=str):
            if key in live:
                child = f"{path}.{key}" if path else str(key)
                yield from _grown(declared[key], live[key], child)
    elif isinstance(declared, list) and isinstance(live, list):
        for index in range(min(len(declared), len(live))):
            yield from _grown(declared[index], live[index], f"{path}[{index}]")
        for index in range(len(declared), len(live)):
            yield f"{path}[{index}]"
