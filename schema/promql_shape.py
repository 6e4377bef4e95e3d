"""What a PromQL expression of the spec must be, beyond parsing, for the rules file to load.

``promql-parser`` (the in-process parser of ``schema/formats.py``) follows Prometheus 3, while the
rules file must load in the Prometheus that runs it and pass ``promtool check rules`` of the
version the judges install (Debian's 2.42). One expression that promtool refuses fails the whole
file, and with it every SLO alert of the system, so an expression is accepted only when it is:

* **shallow**: brackets nest at most :data:`MAX_NESTING` deep, counted by a linear scan *before*
  parsing (so neither parser nor any later tree walk can recurse without bound), and the parsed
  tree is at most :data:`MAX_DEPTH` deep (long operator chains and ``----x``);
* **an instant vector**: not a string (``'"hello"'``), a scalar (``'1'``, ``time()``), a range
  vector (``x[5m]``) or a subquery;
* **Prometheus 2 syntax**: no quoted (UTF-8) metric or label names (``{"my.metric"}``), no
  function or aggregation promtool 2.42 does not know (``limitk``, ``info``, ``fill(0)``, ...),
  durations only where Prometheus 2 reads them (in ``[...]`` and after ``offset``, with a unit),
  ``{a="b" or c="d"}`` not, and regular expressions that Go's RE2 compiles (Go has no
  ``(?<name>...)``, ``(?x)``, binary Unicode properties such as ``\\p{Alphabetic}``, nested
  repetition ``a**`` or repeat counts over 1000, which the parser's Rust engine accepts).

Each check returns a :class:`Problem` (code, message, hint) or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlplane.schema.formats import WINDOW_MARK

MAX_NESTING = 32
"""Deepest bracket nesting, ``(``, ``[`` and ``{`` alike."""
MAX_DEPTH = 64
"""Deepest parsed tree (operators, calls and brackets): long chains stay walkable."""

_INVALID = "invalid-promql"
TOO_DEEP = "promql-too-deep"
NOT_VECTOR = "promql-not-vector"
UNSUPPORTED = "promql-unsupported"


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    hint: str


# Prometheus 2.42's functions (promql/parser/functions.go, experimental ones excluded) and
# aggregation operators. Function names are case-sensitive, keywords are not.
FUNCTIONS = frozenset({
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year"
})  # fmt: skip
AGGREGATIONS = frozenset({
    "avg", "bottomk", "count", "count_values", "group", "max", "min", "quantile", "stddev",
    "stdvar", "sum", "topk"
})  # fmt: skip
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "offset"}) | _GROUPING
_AT_FUNCTIONS = frozenset({"start", "end"})
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATORS = ("==", "!=", "=~", "!~", ">=", "<=", ">", "<", "=", "+", "-", "*", "/", "%", "^", "@")
_HINT_SYNTAX = (
    "the rules run in Prometheus 2 (promtool 2.42 judges them): write names unquoted, use its "
    "functions, and durations with a unit inside [...] or after offset"
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # ident, number, duration, string, op, open, close, other
    text: str


MAX_LENGTH = 4096


def check(value: str) -> Problem | None:
    """Every problem of one PromQL field of the spec, the first found: length, ``{{ }}`` marks,
    nesting (before parsing), parsing, Prometheus 2 syntax, then depth and value type."""
    if len(value) > MAX_LENGTH:
        return Problem(_INVALID, f"PromQL expression is longer than {MAX_LENGTH} characters", "")
    concrete = WINDOW_MARK.sub("5m", value)
    if "{{" in concrete or "}}" in concrete:
        message = "only {{window}} may appear between '{{' and '}}' in a PromQL expression"
        return Problem(_INVALID, message, "")
    problem = nesting_problem(concrete)
    if problem is not None:
        return problem
    import promql_parser

    try:
        tree = promql_parser.parse(concrete)
    except (ValueError, TypeError) as error:
        message = f"PromQL does not parse: {str(error).splitlines()[0][:200]}"
        return Problem(_INVALID, message, "")
    return syntax_problem(concrete) or shape_problem(tree)


def nesting_problem(text: str) -> Problem | None:
    """A linear scan (strings and comments skipped): brackets nested deeper than the limit."""
    depth = deepest = 0
    for token in _tokens(text):
        if token.kind == "open":
            depth += 1
            deepest = max(deepest, depth)
        elif token.kind == "close":
            depth -= 1
    if deepest > MAX_NESTING:
        return Problem(
            TOO_DEEP,
            f"PromQL expression nests brackets {deepest} deep; the limit is {MAX_NESTING}",
            "split the query or drop redundant parentheses",
        )
    return None


def syntax_problem(text: str) -> Problem | None:  # noqa: PLR0912 (one pass, one branch a token kind)
    """Prometheus 3 syntax that the parser accepts and promtool 2 refuses (see the module)."""
    tokens = _tokens(text)
    stack: list[str] = []  # "selector", "grouping", "range", "paren"
    expect = "name"  # inside a selector: name, op, value, comma
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else None
        context = stack[-1] if stack else None
        if token.kind == "other":
            return _unsupported(f"unexpected character {token.text!r}")
        if context == "selector" and token.kind not in ("open", "close"):
            problem = _selector_token(token, expect)
            if problem is not None:
                return problem
            expect = {"name": "op", "op": "value", "value": "comma", "comma": "name"}[expect]
            if token.kind == "string" and previous is not None and previous.text in ("=~", "!~"):
                problem = regex_problem(_unquote(token.text))
                if problem is not None:
                    return problem
            continue
        if context == "grouping" and token.kind == "string":
            return _unsupported(f"quoted label name {token.text} (Prometheus 3 syntax)")
        if token.kind == "open":
            stack.append(_opened(token, previous))
            expect = "name"
            if stack[-1] == "paren" and previous is not None and previous.kind == "ident":
                problem = _call_problem(previous, tokens[index - 2] if index > 1 else None)
                if problem is not None:
                    return problem
        elif token.kind == "close":
            if stack:
                stack.pop()
        elif token.kind == "duration":
            problem = _duration_problem(token, context, tokens[max(0, index - 2) : index])
            if problem is not None:
                return problem
        elif token.kind == "number" and (
            context == "range" or _after_offset(tokens[max(0, index - 2) : index])
        ):
            return _unsupported(f"duration {token.text} without a unit (write {token.text}s)")
    return None


def shape_problem(tree: Any) -> Problem | None:
    """The parsed tree is too deep, or its value is not an instant vector."""
    import promql_parser as p

    pending: list[tuple[Any, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            return Problem(
                TOO_DEEP,
                f"PromQL expression is more than {MAX_DEPTH} operators and calls deep",
                "split long chains of operators into sums of fewer terms",
            )
        pending.extend((child, depth + 1) for child in _children(p, node))
    kind = _value_type(p, tree)
    if kind != "vector":
        return Problem(
            NOT_VECTOR,
            f"PromQL expression is a {kind}, not an instant vector",
            "an indicator query counts events as a vector, e.g. "
            'sum(rate(http_requests_total{code=~"5.."}[{{window}}])); wrap a number in '
            "vector(...)",
        )
    return None


# --- regular expressions (Go RE2 as of Go 1.19/1.20) -------------------------------------------

_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_GO_FLAGS = re.compile(r"\(\?[imsU]*(-[imsU]*)?[:)]")
_ESCAPES = set("1234567xaftnrvdDsSwWbBAzpPQE0")


def regex_problem(value: str) -> Problem | None:  # noqa: PLR0912, PLR0915 (one pass over the pattern)
    """A regular expression that Go's regexp refuses although the Rust engine takes it."""
    groups: list[int] = [1]  # the largest repetition product inside each open group
    last_group = 1  # the product inside the group just closed (when the atom before is ")")
    after: str | None = None  # "atom", "group", "repeat": what the previous item was
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            following = value[i + 1 : i + 2]
            if following.isalnum() and following not in _ESCAPES:
                return _regex(f"escape \\{following}")
            if following in ("p", "P"):
                name = re.match(r"\{\^?([A-Za-z_]+)\}|([A-Za-z])", value[i + 2 :])
                category = (name.group(1) or name.group(2)) if name else ""
                if not re.fullmatch(r"[A-Z][a-z]?|Any|[A-Z][a-z]+(_[A-Z][a-z]+)*", category):
                    return _regex(f"Unicode class \\{following}{value[i + 2 : i + 12]}")
                if category in _RUST_ONLY_PROPERTIES:
                    return _regex(f"Unicode property {category}")
            if following == "Q":
                end = value.find("\\E", i + 2)
                i = len(value) if end < 0 else end + 2
                after = "atom"
                continue
            i += 2
            after = "atom"
            continue
        if char == "[":
            skipped = _skip_class(value, i)
            if isinstance(skipped, Problem):
                return skipped
            i, after = skipped, "atom"
            continue
        if char == "(":
            if value.startswith("(?", i) and not (
                value.startswith("(?:", i)
                or value.startswith("(?P<", i)
                or _GO_FLAGS.match(value, i)
            ):
                return _regex(f"group {value[i : i + 4]}")
            groups.append(1)
            after = None
            i += 1
            continue
        if char == ")":
            last_group = groups.pop() if len(groups) > 1 else 1
            groups[-1] = max(groups[-1], last_group)
            after = "group"
            i += 1
            continue
        repeat = _REPEAT.match(value, i) if char == "{" else None
        if char in "*+?" or repeat is not None:
            if after == "repeat":
                return _regex(f"nested repetition at {value[max(0, i - 2) : i + 1]!r}")
            count = int(repeat.group(3) or repeat.group(1)) if repeat is not None else 1
            i = repeat.end() if repeat is not None else i + 1
            inner = last_group if after == "group" else 1
            if count > 1000 or inner * max(count, 1) > 1000:
                return _regex("a repetition count over 1000 (nested counts multiply)")
            groups[-1] = max(groups[-1], inner * max(count, 1))
            after = "repeat"
            if value.startswith("?", i):  # non-greedy
                i += 1
            continue
        after = "atom" if char not in "|^$" else None
        i += 1
    return None


_RUST_ONLY_PROPERTIES = frozenset(
    {"Alphabetic", "Alpha", "White_Space", "Whitespace", "Emoji", "Uppercase", "Lowercase",
     "Math", "Ideographic", "Digit", "Word", "Assigned", "ASCII", "Ascii"}
)  # fmt: skip


def _skip_class(value: str, start: int) -> int | Problem:
    """The index after the character class opened at ``start`` (Go takes any content that the
    Rust engine takes, apart from the escapes and Unicode classes checked here)."""
    i = start + 1
    if value.startswith("^", i):
        i += 1
    if value.startswith("]", i):
        i += 1
    while i < len(value) and value[i] != "]":
        if value[i] == "\\":
            following = value[i + 1 : i + 2]
            if following.isalnum() and following not in _ESCAPES:
                return _regex(f"escape \\{following}")
            if following in ("p", "P"):
                problem = regex_problem(value[i : i + 40].split("]", maxsplit=1)[0])
                if problem is not None:
                    return problem
            i += 2
            continue
        if value.startswith("[:", i):
            end = value.find(":]", i + 2)
            i = len(value) if end < 0 else end + 2
            continue
        i += 1
    return i + 1


def _regex(what: str) -> Problem:
    return Problem(
        UNSUPPORTED,
        f"regular expression uses {what}: Prometheus 2 (Go's regexp) rejects it",
        "use RE2 syntax that Go accepts: (?P<name>...), flags i, m, s, U, \\pL or \\p{Greek}, "
        "repetition counts up to 1000",
    )


# --- the token scan ------------------------------------------------------------------------------


def _tokens(text: str) -> list[_Token]:  # noqa: PLR0912 (one branch per token kind)
    """PromQL tokens, linear in ``text``; comments and white space are dropped, unterminated
    strings run to the end (the parser reports them)."""
    found: list[_Token] = []
    i, size = 0, len(text)
    brackets: list[str] = []
    while i < size:
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "#":
            end = text.find("\n", i)
            i = size if end < 0 else end + 1
        elif char in "\"'`":
            j = i + 1
            while j < size and text[j] != char:
                j += 2 if text[j] == "\\" and char != "`" else 1
            found.append(_Token("string", text[i : j + 1]))
            i = j + 1
        elif char in "([{":
            brackets.append(char)
            found.append(_Token("open", char))
            i += 1
        elif char in ")]}":
            if brackets:
                brackets.pop()
            found.append(_Token("close", char))
            i += 1
        elif char == ":" and brackets and brackets[-1] == "[":
            found.append(_Token("op", ":"))
            i += 1
        elif number := _NUMBER.match(text, i):
            end = number.end()
            unit = re.compile(r"[A-Za-z0-9_]*").match(text, end)
            tail = unit.end() if unit else end
            kind = "duration" if tail > end else "number"
            found.append(_Token(kind, text[i:tail]))
            i = tail
        elif ident := _IDENT.match(text, i):
            found.append(_Token("ident", ident.group()))
            i = ident.end()
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, i)), None)
            if operator is not None or char == ",":
                found.append(_Token("op", operator or ","))
                i += len(operator or ",")
            else:
                found.append(_Token("other", char))
                i += 1
    return found


def _opened(token: _Token, previous: _Token | None) -> str:
    if token.text == "{":
        return "selector"
    if token.text == "[":
        return "range"
    if previous is not None and previous.kind == "ident" and previous.text.lower() in _GROUPING:
        return "grouping"
    return "paren"


def _selector_token(token: _Token, expect: str) -> Problem | None:
    if expect == "name" and token.kind == "string":
        return _unsupported(f"quoted metric or label name {token.text} (Prometheus 3 syntax)")
    ok = {
        "name": token.kind == "ident" and _LABEL_NAME.fullmatch(token.text) is not None,
        "op": token.text in _MATCH_OPS,
        "value": token.kind == "string",
        "comma": token.text == ",",
    }[expect]
    if not ok:
        return _unsupported(
            f'{token.text!r} in a label selector; Prometheus 2 reads name="value" matchers '
            "separated by commas"
        )
    return None


def _call_problem(name: _Token, before: _Token | None) -> Problem | None:
    word = name.text
    if word.lower() in _KEYWORDS or word.lower() in AGGREGATIONS or word in FUNCTIONS:
        return None
    if word in _AT_FUNCTIONS and before is not None and before.text == "@":
        return None
    return _unsupported(f"function {word!r}, which Prometheus 2.42 does not have")


def _after_offset(before: list[_Token]) -> bool:
    words = [t.text.lower() for t in before]
    return bool(words) and (words[-1] == "offset" or words[-2:] == ["offset", "-"])


def _duration_problem(token: _Token, context: str | None, before: list[_Token]) -> Problem | None:
    if context != "range" and not _after_offset(before):
        return _unsupported(
            f"duration {token.text} outside [...] and offset (Prometheus 2 has no duration "
            "literals; write seconds as a number)"
        )
    if not _DURATION.fullmatch(token.text) or not re.search(r"[1-9]", token.text):
        return _unsupported(f"duration {token.text!r} (Prometheus 2 wants e.g. 5m, 1h30m, > 0)")
    return None


def _unsupported(what: str) -> Problem:
    return Problem(UNSUPPORTED, f"PromQL uses {what}: promtool 2 rejects it", _HINT_SYNTAX)


def _unquote(literal: str) -> str:
    """The value of a string token as Go reads it (escapes resolved; raw strings as written)."""
    body = literal[1:-1] if len(literal) >= 2 else ""
    if literal.startswith("`"):
        return body
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return body


# --- the parsed tree -----------------------------------------------------------------------------


def _children(p: Any, node: Any) -> list[Any]:
    if isinstance(node, p.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, (p.ParenExpr, p.UnaryExpr, p.SubqueryExpr)):
        return [node.expr]
    if isinstance(node, p.AggregateExpr):
        return [node.expr] + ([node.param] if isinstance(node.param, p.Expr) else [])
    if isinstance(node, p.Call):
        return [arg for arg in node.args if isinstance(arg, p.Expr)]
    return []


def _value_type(p: Any, node: Any) -> str:
    """``vector``, ``scalar``, ``string``, ``range vector``; the tree is bounded by now."""
    while isinstance(node, (p.ParenExpr, p.UnaryExpr)):
        node = node.expr
    if isinstance(node, p.NumberLiteral):
        return "scalar"
    if isinstance(node, p.StringLiteral):
        return "string"
    if isinstance(node, (p.MatrixSelector, p.SubqueryExpr)):
        return "range vector"
    if isinstance(node, p.Call):
        kind = str(node.func.return_type).rsplit(".", 1)[-1].lower()
        return {"matrix": "range vector"}.get(kind, kind)
    if isinstance(node, p.BinaryExpr):
        sides = {_value_type(p, node.lhs), _value_type(p, node.rhs)}
        return "vector" if "vector" in sides else "scalar"
    return "vector"
