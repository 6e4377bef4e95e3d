"""Spec sources: what the loader hands to later passes.

A loaded file is plain data (dicts, lists, str, int, float, bool, None) plus side tables that
map every spec path to where it was written. Keeping positions beside the data (rather than
inside it) lets pydantic validate the plain data directly, and lets a pydantic error's ``loc``
be looked up in one dictionary access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlplane.compiler.core.diagnostics import Location, SpecPath


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits applied while reading, before any structure is built."""

    max_file_bytes: int = 4 * 1024 * 1024
    max_total_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 500_000
    max_scalar_chars: int = 65_536
    max_files: int = 256


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """One spec file, parsed.

    ``values`` maps each path to the start of its value node (scalar, mapping or sequence);
    ``keys`` maps each mapping entry's path to the start of its key. The root has path ``()``.
    ``raw`` keeps the source text of plain scalars that resolved to a non-string (``0755``,
    ``1.10``, ``true``) so that a schema error can say "quote the value: "1.10"".
    """

    name: str
    text: str
    data: dict[str, Any]
    values: dict[SpecPath, Location] = field(default_factory=dict)
    keys: dict[SpecPath, Location] = field(default_factory=dict)
    raw: dict[SpecPath, str] = field(default_factory=dict)

    def location(self, path: SpecPath) -> Location:
        """The most precise known position for ``path``: the key, else the value, else a parent."""
        probe = path
        while True:
            found = self.keys.get(probe) or self.values.get(probe)
            if found is not None:
                return found
            if not probe:
                return Location(self.name, 1, 1)
            probe = probe[:-1]
