"""Synthetic input series for a custom ``ratio`` SLA, so its generated rule test can run.

A custom ratio names its own metrics, so the test generator cannot know which series make "10 %
errors". For the common shapes it can work it out: when both queries are sums of ``rate()`` of
selectors, combined with ``+``, ``-`` and multiplication by numbers, each query is a *linear*
function of the rates of the series it selects. This module

1. makes one candidate series per selector (its metric name and equality matchers; a regex
   matcher gets the first of a few plausible values it fully matches, such as ``500`` for
   ``5..``),
2. computes, per candidate, its coefficient in the errors query and in the total query (the sum
   over the selectors it matches), and
3. solves for non-negative rates of at most two candidates giving ``errors / total = p`` with
   ``total = 1`` (every other candidate exists with rate 0, so each selector returns a series).

Anything else (``or``, functions other than ``rate``, ``offset``, label values outside the
allow-list) returns None and the SLA's test covers only the absent-data case, as the test file
says in its header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from itertools import combinations_with_replacement

import promql_parser

from mlplane.targets.monitoring import promql

Labels = tuple[tuple[str, str], ...]
"""A series' labels including ``__name__``, sorted."""

_REGEX_GUESSES = ("500", "503", "5xx", "error", "failed", "none", "true", "1")
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,199}")


class Unsupported(Exception):
    """The query is not a linear combination of rates this module understands."""


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]
    """``(label, op, value)`` with op one of ``= != =~ !~``."""

    def matches(self, series: Labels) -> bool:
        labels = dict(series)
        if labels.get("__name__") != self.metric:
            return False
        return all(
            _matcher_holds(op, labels.get(name, ""), value) for name, op, value in self.matchers
        )


def _matcher_holds(op: str, actual: str, value: str) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = re.fullmatch(value, actual) is not None
    return found if op == "=~" else not found


Linear = dict[Selector, Fraction]


def _op(node: promql_parser.Expr) -> str:
    return str(getattr(node, "op", ""))


def linear(node: promql_parser.Expr) -> Linear:
    """The query as ``{selector: coefficient}`` (a sum of coefficient × rate(selector))."""
    if isinstance(node, promql_parser.ParenExpr):
        return linear(node.expr)
    if isinstance(node, promql_parser.AggregateExpr) and _op(node) == "sum":
        return linear(node.expr)
    if isinstance(node, promql_parser.Call) and node.func.name == "rate":
        return {_selector(node.args[0]): Fraction(1)}
    if isinstance(node, promql_parser.BinaryExpr):
        return _binary(node)
    raise Unsupported(type(node).__name__)


def _binary(node: promql_parser.BinaryExpr) -> Linear:
    op = _op(node)
    if op in ("+", "-"):
        left, right = linear(node.lhs), linear(node.rhs)
        sign = 1 if op == "+" else -1
        merged = dict(left)
        for key, value in right.items():
            merged[key] = merged.get(key, Fraction(0)) + sign * value
        return merged
    if op == "*" and isinstance(node.lhs, promql_parser.NumberLiteral):
        return {k: v * Fraction(repr(node.lhs.val)) for k, v in linear(node.rhs).items()}
    if op in ("*", "/") and isinstance(node.rhs, promql_parser.NumberLiteral):
        factor = Fraction(repr(node.rhs.val))
        factor = factor if op == "*" else 1 / factor
        return {k: v * factor for k, v in linear(node.lhs).items()}
    raise Unsupported(f"operator {op}")


def _selector(node: object) -> Selector:
    if not isinstance(node, promql_parser.MatrixSelector):
        raise Unsupported("rate() of something other than a range selector")
    vector = node.vector_selector
    if vector.name is None or vector.offset is not None or vector.at is not None:
        raise Unsupported("selector without a metric name, or with offset/@")
    matchers = tuple(
        (m.name, {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}[_op_name(m)], m.value)
        for m in vector.matchers.matchers
        if m.name != "__name__"
    )
    if vector.matchers.or_matchers:
        raise Unsupported("'or' label matchers")
    return Selector(vector.name, matchers)


def _op_name(matcher: promql_parser.Matcher) -> str:
    return str(matcher.op).rsplit(".", 1)[-1].split("(", 1)[0]


def _candidate(selector: Selector) -> Labels:
    labels = {"__name__": selector.metric}
    for name, op, value in selector.matchers:
        if op == "=":
            labels[name] = value
        elif op == "=~":
            labels[name] = next((g for g in (*_REGEX_GUESSES, value) if re.fullmatch(value, g)), "")
            if not labels[name]:
                raise Unsupported(f"no value found for {name}=~{value!r}")
    if not all(_SAFE.fullmatch(v) for v in labels.values()):
        raise Unsupported("label values outside the allow-list")
    return tuple(sorted(labels.items()))


def series_text(series: Labels) -> str:
    """``metric{a="x",b="y"}`` for a promtool ``input_series`` entry."""
    labels = dict(series)
    name = labels.pop("__name__")
    return promql.selector(name, [promql.matcher(k, "=", v) for k, v in sorted(labels.items())])


@dataclass(frozen=True, slots=True)
class RatioModel:
    """Candidates with their coefficients in the errors (``a``) and total (``b``) queries."""

    candidates: tuple[Labels, ...]
    a: tuple[Fraction, ...]
    b: tuple[Fraction, ...]

    def rates(self, ratio: Fraction) -> tuple[Fraction, ...] | None:
        """Non-negative rates with ``total = 1`` and ``errors = ratio``, or None."""
        size = len(self.candidates)
        for i, j in combinations_with_replacement(range(size), 2):
            solution = self._solve(i, j, ratio)
            if solution is not None:
                return solution
        return None

    def _solve(self, i: int, j: int, ratio: Fraction) -> tuple[Fraction, ...] | None:
        a, b = self.a, self.b
        chosen: dict[int, Fraction] = {}
        if i == j:
            if b[i] <= 0 or a[i] != ratio * b[i]:
                return None
            chosen[i] = 1 / b[i]
        else:
            det = a[i] * b[j] - a[j] * b[i]
            if det == 0:
                return None
            x, y = (ratio * b[j] - a[j]) / det, (a[i] - ratio * b[i]) / det
            if x < 0 or y < 0:
                return None
            chosen = {i: x, j: y}
        return tuple(chosen.get(k, Fraction(0)) for k in range(len(a)))


@lru_cache(maxsize=1 << 12)
def ratio_model(errors: str, total: str) -> RatioModel | None:
    """The linear model of a custom ratio (queries with ``{{window}}`` already replaced), or
    None when the queries are not linear combinations of rates. Remembered: each SLA's
    timelines ask for it again, and each call parses both queries (the model is frozen)."""
    try:
        err, tot = linear(promql_parser.parse(errors)), linear(promql_parser.parse(total))
        selectors = sorted({*err, *tot}, key=lambda s: (s.metric, s.matchers))
        candidates = tuple(dict.fromkeys(_candidate(s) for s in selectors))
    except (Unsupported, ValueError, KeyError, re.error):
        return None
    a = tuple(sum((c for s, c in err.items() if s.matches(x)), Fraction(0)) for x in candidates)
    b = tuple(sum((c for s, c in tot.items() if s.matches(x)), Fraction(0)) for x in candidates)
    return RatioModel(candidates, a, b)
