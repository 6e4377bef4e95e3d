"""Diagnostics: every problem a user can cause, located in the spec.

A diagnostic is data (code, severity, message, location, spec path, hint); rendering it as
text, JSON, SARIF or GitHub annotations is the job of ``compiler.render.dispatch``. Codes are registered
once in ``compiler.core.codes`` so that a typo in a code is a programming error caught by the tests,
and so that SARIF can describe every rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mlplane.compiler.core.redact import Redactions

SpecPath = tuple[str | int, ...]
"""A path into the spec data: mapping keys and list indices, outermost first."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A 1-based line and column in a spec file; ``file`` is the path as the user named it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    summary: str
    severity: Severity
    sensitive: bool = False
    """The source line may hold a secret: renderers must not quote it."""


_REGISTRY: dict[str, CodeInfo] = {}
_CODE_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-.][a-z0-9]+)*$")


def register_code(
    code: str, summary: str, severity: Severity = Severity.ERROR, *, sensitive: bool = False
) -> str:
    """Register a stable diagnostic code once; returns the code for use as a constant."""
    if not _CODE_RE.match(code):
        raise ValueError(f"diagnostic code {code!r} is not kebab-case")
    known = _REGISTRY.get(code)
    if known is not None and known.summary != summary:
        raise ValueError(f"diagnostic code {code!r} registered twice with different summaries")
    _REGISTRY[code] = CodeInfo(code, summary, severity, sensitive)
    return code


def code_info(code: str) -> CodeInfo:
    try:
        return _REGISTRY[code]
    except KeyError:
        raise KeyError(f"diagnostic code {code!r} is not registered") from None


def is_sensitive(code: str) -> bool:
    info = _REGISTRY.get(code)
    return info is not None and info.sensitive


def registered_codes() -> tuple[CodeInfo, ...]:
    return tuple(sorted(_REGISTRY.values(), key=lambda info: info.code))


_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: SpecPath) -> str:
    """Render a spec path the way users write it: ``models.scorer.inputs[0]``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            out.append('["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]')
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Related:
    """Another place that takes part in a diagnostic (the first of two duplicate keys, ...)."""

    location: Location
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: Location | None
    path: str = ""
    hint: str | None = None
    related: tuple[Related, ...] = ()
    hide_source: bool = False
    """The source line holds something the secret scanner flagged: renderers must not quote it
    (set by ``Diagnostics``, whatever the code)."""

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.code, self.message)
        return (loc.file, loc.line, loc.column, self.code, self.message)

    def one_line(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message} [{self.code}]"


@dataclass
class Diagnostics:
    """A collector: passes add to it, the pipeline stops between stages when it has errors.

    Every diagnostic added is passed through ``redactions`` first: the values the secret
    scanner flagged, and anything shaped like a credential, are masked in its message, hint,
    spec path and related notes, and it is marked ``hide_source`` when it points at a line the
    scanner flagged. So no pass, present or future, can echo a secret by quoting the spec.
    """

    items: list[Diagnostic] = field(default_factory=list)
    _seen: set[tuple[str, str, Location | None, str]] = field(default_factory=set, repr=False)
    redactions: Redactions = field(default_factory=Redactions, repr=False)

    def redact(self, values: Iterable[str], lines: Iterable[tuple[str, int, int]]) -> None:
        """Mask ``values`` and hide the ``(file, first, last)`` line ranges from now on, and in
        the diagnostics already collected."""
        self.redactions.add_values(values)
        for file, first, last in lines:
            self.redactions.hide_lines(file, first, last)
        earlier, self.items, self._seen = self.items, [], set()
        for diagnostic in earlier:
            self.add(diagnostic)

    def _redacted(self, diagnostic: Diagnostic) -> Diagnostic:
        mask = self.redactions.mask
        location = diagnostic.location
        hide = diagnostic.hide_source or (
            location is not None and self.redactions.hides(location.file, location.line)
        )
        message, path = mask(diagnostic.message), mask(diagnostic.path)
        hint = None if diagnostic.hint is None else mask(diagnostic.hint)
        related = tuple(Related(item.location, mask(item.message)) for item in diagnostic.related)
        if (message, path, hint, related, hide) == (
            diagnostic.message,
            diagnostic.path,
            diagnostic.hint,
            diagnostic.related,
            diagnostic.hide_source,
        ):
            return diagnostic
        return replace(
            diagnostic, message=message, path=path, hint=hint, related=related, hide_source=hide
        )

    def add(self, diagnostic: Diagnostic) -> None:
        code_info(diagnostic.code)  # unregistered codes are a programming error
        diagnostic = self._redacted(diagnostic)
        key = (diagnostic.code, diagnostic.message, diagnostic.location, diagnostic.path)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diagnostic in diagnostics:
            self.add(diagnostic)

    def error(
        self,
        code: str,
        message: str,
        location: Location | None,
        path: SpecPath | str = "",
        hint: str | None = None,
        related: tuple[Related, ...] = (),
    ) -> None:
        self._emit(Severity.ERROR, code, message, location, path, hint, related)

    def warning(
        self,
        code: str,
        message: str,
        location: Location | None,
        path: SpecPath | str = "",
        hint: str | None = None,
        related: tuple[Related, ...] = (),
    ) -> None:
        self._emit(Severity.WARNING, code, message, location, path, hint, related)

    def _emit(
        self,
        severity: Severity,
        code: str,
        message: str,
        location: Location | None,
        path: SpecPath | str,
        hint: str | None,
        related: tuple[Related, ...],
    ) -> None:
        text_path = path if isinstance(path, str) else format_path(path)
        self.add(Diagnostic(code, severity, message, location, text_path, hint, related))

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> tuple[Diagnostic, ...]:
        return tuple(sorted(self.items, key=Diagnostic.sort_key))

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    """``diagnostic`` as JSON data, every field (what the caches store and read back with
    :func:`diagnostic_of`; not a published format: renderers make those)."""
    return {
        "code": diagnostic.code,
        "severity": str(diagnostic.severity),
        "message": diagnostic.message,
        "location": _location_json(diagnostic.location),
        "path": diagnostic.path,
        "hint": diagnostic.hint,
        "related": [[_location_json(r.location), r.message] for r in diagnostic.related],
        "hide_source": diagnostic.hide_source,
    }


def diagnostic_of(item: Mapping[str, Any]) -> Diagnostic:
    """The diagnostic :func:`diagnostic_json` gave ``item`` for; ``KeyError``, ``TypeError`` or
    ``ValueError`` when ``item`` is not of that shape."""
    related = tuple(Related(_location(where), str(text)) for where, text in item["related"])
    hide = item["hide_source"]
    if type(hide) is not bool:
        raise TypeError("hide_source is not a boolean")
    return Diagnostic(
        str(item["code"]),
        Severity(item["severity"]),
        str(item["message"]),
        _location(item["location"]) if item["location"] is not None else None,
        str(item["path"]),
        None if item["hint"] is None else str(item["hint"]),
        related,
        hide,
    )


def _location_json(location: Location | None) -> list[Any] | None:
    return None if location is None else [location.file, location.line, location.column]


def _location(value: Iterable[Any]) -> Location:
    file, line, column = value
    return Location(str(file), int(line), int(column))
