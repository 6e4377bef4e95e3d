"""The PromQL of a spec either fails validation with a located diagnostic or yields rules that
promtool accepts (``schema/promql_shape.py``).

* a table of hostile expressions and the code each gets (None: valid);
* nesting is refused before parsing: 1000 parentheses, long operator chains and ``----x`` give
  ``promql-too-deep``, never a RecursionError, in ``validate`` and ``build`` alike;
* the property: a seeded generator mixes valid and hostile pieces (strings, scalars, range
  vectors, quoted names, Prometheus 3 functions, bare durations, Go-incompatible regular
  expressions); every expression the language accepts goes, as a ratio SLA's ``errors`` and
  ``total``, into one spec whose generated rules must pass ``promtool check rules``.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.schema import promql_shape
from mlplane.targets.monitoring import emit
from tests.specs import BASE

GOOD_TOTAL = "sum(rate(http_requests_total[{{window}}]))"

TABLE = [
    ('"hello"', "promql-not-vector"),
    ("1", "promql-not-vector"),
    ("1 + 1", "promql-not-vector"),
    ("time()", "promql-not-vector"),
    ("scalar(x)", "promql-not-vector"),
    ("x[{{window}}]", "promql-not-vector"),
    ("sum(rate(x[{{window}}]))[5m:1m]", "promql-not-vector"),
    ('{"my.metric"}', "promql-unsupported"),
    ('{"my_metric"}', "promql-unsupported"),
    ('x{"a.b"="c"}', "promql-unsupported"),
    ('sum by ("a.b") (x)', "promql-unsupported"),
    ('x{a="b" or c="d"}', "promql-unsupported"),
    ("limitk(2, x)", "promql-unsupported"),
    ("info(x)", "promql-unsupported"),
    ("x + fill(0) y", "promql-unsupported"),
    ("mad_over_time(x[{{window}}])", "promql-unsupported"),
    ("vector(time() - 5m)", "promql-unsupported"),
    ("rate(x[1])", "promql-unsupported"),
    ("x offset 5", "promql-unsupported"),
    ('x{a=~"(?<n>a)"}', "promql-unsupported"),
    ('x{a=~"(?x)a"}', "promql-unsupported"),
    ('x{a=~"a**"}', "promql-unsupported"),
    ('x{a=~"a{1001}"}', "promql-unsupported"),
    ('x{a=~"(a{100}){100}"}', "promql-unsupported"),
    ('x{a=~"\\\\p{Alphabetic}"}', "promql-unsupported"),
    ('x{a=~"\\\\u0041"}', "promql-unsupported"),
    ("(" * 33 + "x" + ")" * 33, "promql-too-deep"),
    ("(" * 1000 + "x" + ")" * 1000, "promql-too-deep"),
    ("x" + " + x" * 100, "promql-too-deep"),
    ("-" * 100 + "x", "promql-too-deep"),
    ("sum(", "invalid-promql"),
    ("sum(rate(x[{{window}}]))", None),
    ('sum(rate(http_requests_total{code=~"5.."}[{{window}}]))', None),
    ('x{a=~"(?P<n>a)|(?i)b|a*?|\\\\p{Greek}|[[:alpha:]]{2,1000}"}', None),
    ("x offset -5m", None),
    ("x offset 1h30m @ start()", None),
    ("rate(x[{{window}}]) > bool 5", None),
    ("sum(x) by (a) / on(a) group_left(b) y", None),
    ("vector(1)", None),
    ('count_values("v", x) # a comment with ( and {', None),
    ("(" * 32 + "x" + ")" * 32, None),
]


@pytest.mark.parametrize(("expression", "code"), TABLE)
def test_expression_table(expression: str, code: str | None) -> None:
    problem = promql_shape.check(expression)
    assert (problem.code if problem else None) == code, problem
    if problem is not None and problem.code != "invalid-promql":
        assert problem.hint


def spec_with(expressions: list[tuple[str, str]]) -> str:
    """BASE with one ratio SLA per (errors, total) pair."""
    slas = "".join(
        f"  ratio-{i}:\n    model: scorer\n    objective: 99\n    indicator:\n      ratio:\n"
        f"        errors: {json.dumps(errors)}\n        total: {json.dumps(total)}\n"
        for i, (errors, total) in enumerate(expressions)
    )
    return BASE + slas


@pytest.mark.parametrize("depth", [40, 1000, 1900])
def test_deep_ratio_is_a_located_diagnostic_in_validate_and_build(
    tmp_path: Path, depth: int
) -> None:
    deep = "(" * depth + "sum(x)" + ")" * depth
    path = tmp_path / "mlplane.yaml"
    path.write_text(spec_with([(deep, GOOD_TOTAL), (GOOD_TOTAL, "x" + "+x" * 1000)]))
    result = compile_spec(path)
    found = [(d.code, d.location.line if d.location else 0) for d in result.diagnostics]
    text = path.read_text().splitlines()
    errors_line = next(n for n, line in enumerate(text, 1) if "errors: " in line)
    total_line = next(n for n, line in enumerate(text, 1) if "+x+x" in line)
    assert ("promql-too-deep", errors_line) in found
    assert ("promql-too-deep", total_line) in found


# --- the property --------------------------------------------------------------------------------

_METRICS = ["http_requests_total", "x", "job:errors:rate5m", '{job="a"}', '{"my.metric"}']
_MATCHERS = [
    'code=~"5.."',
    'job="api"',
    'a!="b"',
    'le=~"(?i)inf"',
    'a=~"(?<n>x)"',
    'a=~"x**"',
    '"q.name"="v"',
    'a=~"\\\\p{Greek}+"',
    'a=~"[a-z]{1,1000}"',
    'a=~"(x{40}){40}"',
]
_FUNCTIONS = [
    "rate",
    "increase",
    "irate",
    "delta",
    "avg_over_time",
    "mad_over_time",
    "first_over_time",
    "changes",
]
_AGGREGATIONS = [
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "group",
    "limitk(1,",
    "topk(2,",
    "quantile(0.5,",
    'count_values("v",',
]
_DURATIONS = ["{{window}}", "5m", "1h30m", "1", "0s", "5m1h", "1d"]  # fmt: skip


def _selector(rng: random.Random) -> str:
    metric = rng.choice(_METRICS)
    if metric.startswith("{") or rng.random() < 0.4:
        return metric
    matchers = ",".join(rng.sample(_MATCHERS, rng.randint(1, 2)))
    return f"{metric}{{{matchers}}}"


def _vector(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random() if depth < 4 else 0.0
    if roll < 0.25:
        return _selector(rng) + (f" offset {rng.choice(_DURATIONS)}" if rng.random() < 0.1 else "")
    if roll < 0.5:
        return f"{rng.choice(_FUNCTIONS)}({_selector(rng)}[{rng.choice(_DURATIONS)}])"
    if roll < 0.7:
        aggregation = rng.choice(_AGGREGATIONS)
        opener = aggregation if aggregation.endswith(",") else aggregation + "("
        grouping = rng.choice(["", " by (code)", ' by ("a.b")', " without (job)"])
        return f"{opener}{_vector(rng, depth + 1)}){grouping}"
    if roll < 0.85:
        op = rng.choice(["+", "/", "or", "and", "unless", "> bool", "*"])
        return f"{_vector(rng, depth + 1)} {op} {_vector(rng, depth + 1)}"
    if roll < 0.95:
        return f"({_vector(rng, depth + 1)})"
    return rng.choice(["1", '"hello"', "time()", "vector(1)", "x[5m]", "scalar(x)", "-x",
                       "vector(time() - 5m)", "x + fill(0) y", "sum(x)[5m:1m]"])  # fmt: skip


def generated(count: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    return [_vector(rng) for _ in range(count)]


def test_generator_covers_both_outcomes() -> None:
    outcomes = {promql_shape.check(e) is None for e in generated(300)}
    assert outcomes == {True, False}


def test_validated_expressions_pass_promtool(promtool: str, tmp_path: Path) -> None:
    """Rejected with a diagnostic, or the rules file passes promtool: never a broken file."""
    accepted = []
    for expression in generated(300):
        problem = promql_shape.check(expression)
        if problem is None:
            accepted.append(expression)
    assert len(accepted) >= 40
    pairs = [(e, accepted[(i + 1) % len(accepted)]) for i, e in enumerate(accepted)]
    path = tmp_path / "spec" / "mlplane.yaml"
    path.parent.mkdir()
    path.write_text(spec_with(pairs))
    result = compile_spec(path)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()][:5]
    for relative, text in emit.monitoring_files(result.systems["dev"]).items():
        target = tmp_path / "out" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", "--", "rules.yaml"],
        cwd=tmp_path / "out" / "monitoring", capture_output=True, text=True, timeout=300,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
