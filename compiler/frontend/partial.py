"""Partial specs: the valid part of a spec with schema errors, so references are checked too.

A schema error in one model must not hide a dangling reference in another: when a document does
not validate, the entries of the named tables (``models.<name>``, ``dataSources.<name>``, ...)
that hold an error are dropped and the rest is validated again. The resolver then checks the
references of what is left, and treats a reference to a dropped entry as neither defined nor
missing (the entry's own errors are reported already), so nothing cascades from it. An error
outside every named entry (``metadata``, a list such as ``waivers``, a whole section of the wrong
type) leaves nothing that can be checked safely: then there is no partial spec, as before.

A partial spec is only ever checked, never built into a system model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core.diagnostics import SpecPath
from mlplane.compiler.frontend.schema_pass import validate_data
from mlplane.schema.models import MLSystem

TABLES: Mapping[SpecPath, str] = {
    ("dataSources",): "data source",
    ("models",): "model",
    ("slas",): "SLA",
    ("environments",): "environment",
    ("security", "secrets"): "secret",
    ("alerting", "receivers"): "receiver",
    ("policies", "rules"): "policy rule",
    ("ci", "environments"): "CI environment",
}
"""The named tables whose entries can be dropped one by one, with what the resolver calls an
entry of each (the ``what`` of ``Resolver.expect``)."""


@dataclass(frozen=True)
class Partial:
    """The valid part of a spec, and the names dropped from it by what they name."""

    spec: MLSystem
    dropped: Mapping[str, frozenset[str]]
    """``what`` (``"model"``, ``"secret"``, ...) -> the names of the entries with errors."""


def entry_of(path: SpecPath) -> tuple[SpecPath, str] | None:
    """The named entry ``path`` lies in, as (table, name); None outside every named entry."""
    for table in TABLES:
        size = len(table)
        if path[:size] == table and len(path) > size:
            name = path[size]
            return (table, name) if isinstance(name, str) else None
    return None


def prune(data: dict[str, Any], errors: Iterable[SpecPath]) -> Partial | None:
    """``data`` without the named entries that hold ``errors``, validated; None when an error
    lies outside every named entry or the rest still does not validate."""
    dropped: dict[SpecPath, set[str]] = {}
    for path in errors:
        entry = entry_of(path)
        if entry is None:
            return None
        dropped.setdefault(entry[0], set()).add(entry[1])
    if not dropped:
        return None
    pruned = dict(data)
    for table, names in dropped.items():
        _drop(pruned, table, names)
    validated = validate_data(pruned)
    if validated is None:
        return None
    return Partial(validated, {TABLES[t]: frozenset(names) for t, names in dropped.items()})


def _drop(data: dict[str, Any], table: SpecPath, names: set[str]) -> None:
    """Remove ``names`` from the table at ``table``, copying the containers on the way (the
    document's data is shared and never mutated)."""
    head, rest = str(table[0]), table[1:]
    current = data.get(head)
    if not isinstance(current, dict):
        return
    copied = dict(current)
    data[head] = copied
    if rest:
        _drop(copied, rest, names)
    else:
        for name in names:
            copied.pop(name, None)
