"""Small PromQL building blocks that keep spec names from breaking out of a query or a template.

Every label value that reaches PromQL or an alert comes from :func:`safe_value`, an allow-list
(docs/quality.md row 20): letters, digits and ``_ . : @ -``. No quote, backslash, brace, space or
newline can pass, so a value cannot close a ``"..."`` matcher, open a ``{{ }}`` template or start a
new YAML line. The schema already restricts every name that gets here (DNS labels, team slugs,
feature names); this is the second lock, and it fails loudly instead of escaping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from mlplane.schema.formats import WINDOW_MARK

_SAFE_VALUE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,199}")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REGEX_SPECIAL = re.compile(r"([.\\+*?()|\[\]{}^$])")


class UnsafeValueError(ValueError):
    """A value outside the allow-list reached the monitoring emitter (a bug upstream)."""


@lru_cache(maxsize=1 << 16)
def _allowed(pattern: re.Pattern[str], value: str) -> bool:
    """``pattern.fullmatch(value)``, remembered: a large spec checks the same few thousand
    names hundreds of thousands of times."""
    return pattern.fullmatch(value) is not None


def safe_value(value: str) -> str:
    """``value`` unchanged when it only holds allow-listed characters; raises otherwise."""
    if not _allowed(_SAFE_VALUE, value):
        raise UnsafeValueError(f"refusing to put {value!r} into PromQL or an alert label")
    return value


def safe_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels sorted by name, every name and value checked (a new dict on every call)."""
    return dict(_checked_labels(tuple(labels.items())))


@lru_cache(maxsize=1 << 14)
def _checked_labels(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """:func:`safe_labels` of one set of labels, remembered: every rule, alert and selector of
    an SLA carries the same few label sets, so a large spec checks each set once."""
    for name, _ in items:
        if not _allowed(_LABEL_NAME, name):
            raise UnsafeValueError(f"refusing label name {name!r}")
    return tuple((name, safe_value(value)) for name, value in sorted(items))


def matcher(name: str, op: str, value: str) -> str:
    """``name op "value"`` for one allow-listed value (regex values are built by the caller
    from allow-listed parts and may hold regex syntax, but never a quote)."""
    if op not in ("=", "=~", "!=", "!~") or '"' in value or "\n" in value:
        raise UnsafeValueError(f"refusing matcher {name}{op}{value!r}")
    return f'{name}{op}"{value}"'


def selector(metric: str, matchers: Iterable[str]) -> str:
    """``metric{m1,m2}``."""
    return f"{metric}{{{','.join(matchers)}}}"


def label_selector(labels: Mapping[str, str]) -> str:
    """The matchers that select exactly the series carrying ``labels``: ``{a="x",b="y"}``."""
    return _selector_text(tuple(labels.items()))


@lru_cache(maxsize=1 << 14)
def _selector_text(items: tuple[tuple[str, str], ...]) -> str:
    """:func:`label_selector`, remembered (the same identity selects every recorded series of
    an SLA, in its rules, alerts and tests)."""
    return "{" + ",".join(matcher(k, "=", v) for k, v in _checked_labels(items)) + "}"


def regex_alternatives(values: Iterable[str]) -> str:
    """A regex matching exactly the allow-listed ``values`` (``.`` escaped as ``\\\\.``, the
    backslash doubled for the PromQL string literal)."""
    escaped = (_REGEX_SPECIAL.sub(r"\\\\\1", safe_value(v)) for v in sorted(set(values)))
    return "|".join(escaped)


def le_matcher(boundary: str) -> str:
    """Matcher for one histogram bucket. Integer boundaries are written ``1`` by Go clients and
    ``1.0`` by Python clients and by Prometheus 3 (which normalises ``le``), so both match."""
    if "." in boundary:
        return matcher("le", "=", boundary)
    return matcher("le", "=~", f"{boundary}(\\\\.0)?")


def with_window(expression: str, window: str) -> str:
    """A custom ratio query with its ``{{window}}`` marks replaced by ``window``."""
    return WINDOW_MARK.sub(window, expression)
