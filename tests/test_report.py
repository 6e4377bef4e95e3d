"""mlplane report: golden reports of the examples, the JSON Schema, completeness and lineage
closure on generated specs (Hypothesis), hostile spec text, the CLI and graph --view lineage.

The real tools judge the goldens in ``tests/test_report_judges.py`` (Chromium, Mermaid,
check-jsonschema). Regenerate the goldens with ``MLPLANE_ACCEPT=1 pytest tests/test_report.py``
(``make report`` writes the fraud example's reports for a look).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import markdown_it
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlplane.compiler.cli.main import cli
from mlplane.compiler.core.lineage import crosses
from mlplane.compiler.policy.engine import installed_rules
from mlplane.compiler.render.mermaid import clean
from mlplane.compiler.report.controls import rule_kinds, subjects
from mlplane.compiler.report.escape import xml
from mlplane.compiler.report.html import render_html
from mlplane.compiler.report.json_format import render_json
from mlplane.compiler.report.markdown import render_markdown
from mlplane.compiler.report.model import Report
from mlplane.compiler.report.run import ReportRun, build_reports, judge_reports, render_reports
from mlplane.compiler.report.schema import schema_text
from mlplane.compiler.report.views import render_mermaid

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "report"
SCHEMA_FILE = REPO / "docs" / "report.v1.schema.json"
EXAMPLES = sorted(p.name for p in (REPO / "examples").iterdir() if any(p.glob("*.yaml")))
TODAY = date(2026, 1, 15)
"""The goldens' report date: fixed, so the waiver calendar never depends on the clock."""
ACCEPT = os.environ.get("MLPLANE_ACCEPT") == "1"
RENDER = {"html": render_html, "md": render_markdown, "json": render_json}


def _run(example: str) -> ReportRun:
    """The reports of an example, as the goldens hold them (graph rules evaluated)."""
    cwd = Path.cwd()
    os.chdir(REPO)  # spec locations are then relative, as a user in the repository sees them
    try:
        return build_reports(
            judge_reports(Path("examples") / example, None, today=TODAY, lower=True)
        )
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module", params=EXAMPLES)
def example_reports(request: pytest.FixtureRequest) -> tuple[str, dict[str, Report]]:
    run = _run(request.param)
    problems = [d.one_line() for d in (*run.compiled.sorted_diagnostics(), *run.problems)]
    assert run.ok, problems
    return request.param, run.reports


def test_goldens(example_reports: tuple[str, dict[str, Report]]) -> None:
    example, reports = example_reports
    schema = json.loads(SCHEMA_FILE.read_text())
    produced = {
        f"{env}.{ext}": render(report)
        for env, report in reports.items()
        for ext, render in RENDER.items()
    }
    folder = GOLDEN / example
    if ACCEPT:
        for name, text in produced.items():
            if name.endswith(".json"):
                jsonschema.validate(json.loads(text), schema)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in produced.items():
            (folder / name).write_text(text, encoding="utf-8")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}
    assert sorted(expected) == sorted(produced), "regenerate with MLPLANE_ACCEPT=1"
    for name, text in produced.items():
        if text != expected[name]:
            diff = difflib.unified_diff(
                expected[name].splitlines(), text.splitlines(), name, "produced", lineterm=""
            )
            shown = [line if len(line) < 240 else line[:240] + "..." for line in list(diff)[:60]]
            pytest.fail("\n".join(shown) + "\n(regenerate with MLPLANE_ACCEPT=1)")


def test_readme_lineage_is_current() -> None:
    """README.md shows the fraud example's prod lineage as Mermaid: the one the report draws."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", readme, re.S | re.M)
    lineage = _run("fraud-scoring").reports["prod"].lineage
    assert blocks == [render_mermaid(lineage)], (
        "update README.md's Mermaid block: mlplane graph examples/fraud-scoring --env prod "
        "--view lineage --format mermaid"
    )


def test_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "regenerate: python -m mlplane.compiler.report.schema > docs/report.v1.schema.json"
    )


def test_every_report_matches_its_schema(example_reports: tuple[str, dict[str, Report]]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for report in example_reports[1].values():
        jsonschema.validate(json.loads(render_json(report)), schema)


def test_same_spec_same_bytes() -> None:
    first, second = _run("fraud-scoring"), _run("fraud-scoring")
    for env, report in first.reports.items():
        assert render_html(report) == render_html(second.reports[env])
        assert render_markdown(report) == render_markdown(second.reports[env])


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_reports_rendered_in_workers_are_the_same_bytes(workers: int) -> None:
    """``render_reports`` (what the CLI calls) builds and renders each environment in forked
    workers: the text is what rendering the built reports in this process gives."""
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        judged = judge_reports(Path("examples") / "fraud-scoring", None, today=TODAY, lower=True)
    finally:
        os.chdir(cwd)
    expected = {env: render_html(report) for env, report in _run("fraud-scoring").reports.items()}
    assert judged.ok and not judged.reports and len(expected) > 1
    assert render_reports(judged, render_html, workers=workers) == expected


@given(st.text() | st.sampled_from(["a&b", "x<y>", "\u2028", "\x7f"]))
def test_xml_escaper_inert_text_fast_path(text: str) -> None:
    """``escape.xml`` returns inert text as it is: the same as cleaning and escaping it."""
    escaped = (
        clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )
    assert xml(text) == escaped


def test_fraud_example_content() -> None:
    """What an auditor looks for in the fraud example, read from the report."""
    run = _run("fraud-scoring")
    prod = run.reports["prod"]
    features = next(e for e in prod.data_register if e.name == "fraud-features")
    assert features.upstream == ("card-transactions", "merchant-profiles")
    assert features.readers == ("scorer",)
    assert [(g.principal, g.actions) for g in features.grants] == [
        ("group:risk-analysts", ("read",))
    ]
    transactions = next(e for e in prod.data_register if e.name == "card-transactions")
    assert transactions.derived == ("daily-transactions", "fraud-features", "fraud-scores")
    assert transactions.readers == ("scorer",)  # through fraud-features
    retention = next(
        c
        for c in prod.controls
        if c.rule == "data.retention-bounded" and c.subject.name == "card-transactions"
    )
    assert retention.status == "waived"
    assert retention.waiver is not None and retention.waiver.ticket == "RISK-142"
    calendar = {w.policy: w for w in prod.waivers}
    assert calendar["data.retention-bounded"].days_left == (date(2027, 3, 31) - TODAY).days
    assert calendar["data.retention-bounded"].due == "later"
    card = prod.model_cards[0]
    assert card.explainability_method == "shap" and card.drift is not None
    assert card.rollout.gates == ("scorer-availability", "scorer-latency")
    aws = run.reports["prod-aws"]
    assert any(e.name == "scoring-capture" and e.writers == ("scorer",) for e in aws.data_register)
    writes = {(e.source, e.target) for e in aws.lineage.edges if e.kind == "writes"}
    assert writes == {
        ("model:scorer", "dataSource:scoring-capture"),  # captured traffic
        ("model:scorer", "dataSource:fraud-scores"),  # the nightly batch scores
    }


def test_waiver_calendar_buckets() -> None:
    """30/90-day horizons relative to the report date, and expiry (the finding fails again)."""
    example = Path("examples") / "fraud-scoring"
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        soon = build_reports(judge_reports(example, ["prod"], today=date(2027, 3, 10)))
        later = build_reports(judge_reports(example, ["prod"], today=date(2027, 1, 5)))
        gone = build_reports(judge_reports(example, ["prod"], today=date(2027, 4, 1)))
    finally:
        os.chdir(cwd)
    pick = {
        name: {w.policy: w for w in run.reports["prod"].waivers}["data.retention-bounded"]
        for name, run in (("soon", soon), ("later", later), ("gone", gone))
    }
    assert (pick["soon"].due, pick["soon"].days_left) == ("30d", 21)
    assert (pick["later"].due, pick["later"].days_left) == ("90d", 85)
    assert (pick["gone"].due, pick["gone"].used) == ("expired", False)
    row = next(
        c
        for c in gone.reports["prod"].controls
        if c.rule == "data.retention-bounded" and c.subject.name == "card-transactions"
    )
    assert row.status == "fail" and row.waiver is None and row.findings


# --- generated specs: completeness and lineage closure ------------------------------------------

RESIDENCIES = ("eu", "us", "global", None)
CLASSES = ("public", "internal", "confidential", "pii", "phi")


@st.composite
def systems(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 7))
    sources: dict[str, Any] = {}
    for index in range(count):
        parents = draw(st.sets(st.integers(0, index - 1), max_size=3)) if index else set()
        source: dict[str, Any] = {
            "type": "stream",
            "uri": f"kafka://events.internal:9093/d{index}",
            "classification": draw(st.sampled_from(CLASSES)),
            "retention": "30d",
            "encryption": "kms",
            "owner": "team-a",
        }
        residency = draw(st.sampled_from(RESIDENCIES))
        if residency:
            source["residency"] = residency
        if parents:
            source["derivedFrom"] = [f"d{p}" for p in sorted(parents)]
        sources[f"d{index}"] = source
    models = {}
    for index in range(draw(st.integers(0, 4))):
        inputs = draw(st.sets(st.integers(0, count - 1), min_size=1, max_size=3))
        models[f"m{index}"] = {
            "framework": "sklearn",
            "version": "1.0.0",
            "image": "ghcr.io/acme/model@sha256:" + "0" * 64,
            "inputs": [f"d{i}" for i in sorted(inputs)],
            "serving": {
                "replicas": {"min": 2, "max": 4},
                "resources": {"cpu": "1", "memory": "1Gi"},
            },
        }
    return {
        "apiVersion": "mlplane.dev/v1",
        "kind": "MLSystem",
        "metadata": {"name": "generated", "owner": "team-a"},
        "environments": {
            "prod": {
                "target": "kubernetes",
                "production": True,
                "residency": draw(st.sampled_from(("eu", "us"))),
                "kubernetes": {"context": "prod", "namespace": "generated"},
            }
        },
        "dataSources": sources,
        "models": models,
        "security": {"network": {"defaultDeny": True}},
    }


def _closure(children: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(children.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(children.get(node, ()))
    return seen


@pytest.mark.slow
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=systems())
def test_completeness_and_lineage_closure(spec: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "mlplane.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    run = build_reports(judge_reports(path, None, today=TODAY))
    assert run.ok, [d.one_line() for d in (*run.compiled.sorted_diagnostics(), *run.problems)]
    report, system = run.reports["prod"], run.compiled.systems["prod"]
    sources, models = spec["dataSources"], spec["models"]
    # every data source and model exactly once
    assert [e.name for e in report.data_register] == sorted(sources)
    assert [c.name for c in report.model_cards] == sorted(models)
    # every rule x every subject of its kinds, each pair exactly once
    pairs = [(c.rule, c.subject.path) for c in report.controls]
    assert len(pairs) == len(set(pairs))
    every = subjects(system)
    for rule in installed_rules():
        wanted = {s.path for kind in rule_kinds(rule) for s in every[kind]}
        assert wanted <= {path for rid, path in pairs if rid == rule.id}, rule.id
    assert {r.id for r in report.rules} >= {r.id for r in installed_rules()}
    # lineage closure, computed here from the spec alone
    children: dict[str, set[str]] = {name: set() for name in sources}
    for name, source in sources.items():
        for parent in source.get("derivedFrom", ()):
            children[parent].add(name)
    for entry in report.data_register:
        assert set(entry.derived) == _closure(children, entry.name)
        readers = {
            m
            for m, model in models.items()
            if any(entry.name == i or entry.name in _ancestors(sources, i) for i in model["inputs"])
        }
        assert set(entry.readers) == readers
    edges = {(e.source, e.target, e.kind): e for e in report.lineage.edges}
    ids = {n.id for n in report.lineage.nodes}
    assert all(e.source in ids and e.target in ids for e in report.lineage.edges)
    served = spec["environments"]["prod"]["residency"]
    for name, source in sources.items():
        for parent in source.get("derivedFrom", ()):
            edge = edges[(f"dataSource:{parent}", f"dataSource:{name}", "derives")]
            assert edge.cross_border == crosses(
                sources[parent].get("residency"), source.get("residency")
            )
    for m, model in models.items():
        for i in model["inputs"]:
            edge = edges[(f"dataSource:{i}", f"model:{m}", "reads")]
            assert edge.cross_border == crosses(sources[i].get("residency"), served)
    reads = {(s, t) for s, t, k in edges if k == "reads"}
    assert reads == {
        (f"dataSource:{i}", f"model:{m}") for m, x in models.items() for i in x["inputs"]
    }


def _ancestors(sources: dict[str, Any], name: str) -> set[str]:
    parents = {n: set(s.get("derivedFrom", ())) for n, s in sources.items()}
    return _closure(parents, name)


# --- hostile spec text ------------------------------------------------------------------------

HOSTILE = (
    "<script>alert(1)</script><img src=x onerror=alert(2)> ]]> --> \"' ` ``` | [x](javascript:y)"
    " @everyone $x$ &amp; #59; %% click n0 call alert() \\ end"
)


def _hostile_spec(tmp_path: Path) -> Path:
    text = (REPO / "examples" / "fraud-scoring" / "mlplane.yaml").read_text()
    quoted = json.dumps(HOSTILE)
    text = text.replace(
        "description: Real-time card fraud scoring for the EU card-issuing business",
        f"description: {quoted}",
    )
    text = text.replace(
        "description: Authorisation events from the card processor, one per transaction",
        f"description: {quoted}",
    )
    text = text.replace("reason: Chargeback disputes need 400 days of history (RISK-142)",
                        f"reason: {quoted}")  # fmt: skip
    path = tmp_path / "mlplane.yaml"
    path.write_text(text)
    return path


SAFE_MARKDOWN_TAGS = {"h1", "h2", "h3", "p", "ul", "li", "strong", "table", "thead", "tbody",
                      "tr", "th", "td", "pre", "code", "br"}  # fmt: skip


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_text_stays_text(tmp_path: Path) -> None:
    run = build_reports(judge_reports(_hostile_spec(tmp_path), ["prod"], today=TODAY))
    assert run.ok, [d.one_line() for d in (*run.compiled.sorted_diagnostics(), *run.problems)]
    report = run.reports["prod"]
    page = _Collect()
    page.feed(render_html(report))
    assert not [t for t, _ in page.tags if t in ("script", "img", "iframe", "object", "embed")]
    assert all(not name.startswith("on") for _, attrs in page.tags for name, _ in attrs)
    links = [dict(attrs).get("href") for t, attrs in page.tags if t == "a"]
    assert all(str(link).startswith("#") for link in links)  # only the report's own navigation
    assert HOSTILE in "".join(page.text)  # shown verbatim, as text
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(render_markdown(report))
    inline = [c for t in tokens for c in t.children or ()]
    kinds = {t.type for t in tokens} | {c.type for c in inline}
    assert not kinds & {"html_block", "link_open", "image"}
    assert {c.content for c in inline if c.type == "html_inline"} <= {"<br>"}  # our own breaks
    codes = {c.content for c in inline if c.type == "code_inline"}
    assert codes <= {rule.id for rule in report.rules}  # only rule ids are code
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(render_markdown(report))
    shown = _Collect()
    shown.feed(rendered)
    assert {t for t, _ in shown.tags} <= SAFE_MARKDOWN_TAGS
    assert HOSTILE in "".join(shown.text)  # shown verbatim: entities and escapes stay text
    fences = [t for t in tokens if t.type == "fence"]
    assert [t.info for t in fences] == ["mermaid"]  # the only code block is the lineage
    cells = [t for t in tokens if t.type == "tr_open"]
    assert cells  # tables still parse as tables


# --- the command line -------------------------------------------------------------------------


def test_cli_writes_one_file_per_environment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (tmp_path / "out").mkdir()
    (out / "notes.txt").write_text("mine")
    result = CliRunner().invoke(
        cli,
        [
            "report",
            str(REPO / "examples" / "fraud-scoring"),
            "--out",
            str(out),
            "--format",
            "json",
            "--today",
            "2026-01-15",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "dev.json",
        "edge.json",
        "notes.txt",
        "prod-aws.json",
        "prod.json",
    ]
    assert (out / "notes.txt").read_text() == "mine"
    data = json.loads((out / "prod.json").read_text())
    assert data["version"] == "mlplane.dev/report/v1" and data["today"] == "2026-01-15"


def test_cli_spec_errors_are_located_and_nothing_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "mlplane.yaml"
    text = (REPO / "examples" / "fraud-scoring" / "mlplane.yaml").read_text()
    spec.write_text(text.replace("inputs: [fraud-features]", "inputs: [fraud-featurez]"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", str(spec), "--out", str(out)])
    assert result.exit_code == 1
    assert f"{spec}:" in result.output and "fraud-featurez" in result.output
    assert not out.exists()


@pytest.mark.parametrize("workers", [0, 1])
def test_target_refusals_stop_the_reports(workers: int, tmp_path: Path) -> None:
    """The target checks run per environment with the report (in workers when there are free
    cores): what the target refuses is reported as validate reports it, and no report is
    rendered."""
    spec = REPO / "tests" / "corpus" / "28-public-without-allow.yaml"
    judged = judge_reports(spec, None, today=TODAY)
    assert judged.ok  # schema, references and policies pass; the target has not judged yet
    assert render_reports(judged, render_html, workers=workers) == {}
    codes = {d.code for d in judged.compiled.diagnostics if d.severity == "error"}
    assert codes == {"kubernetes-public-without-allow", "kubernetes-ingress-host-missing"}
    validated = CliRunner().invoke(cli, ["validate", str(spec)])
    reported = CliRunner().invoke(cli, ["report", str(spec), "--out", str(tmp_path / "out")])
    assert validated.exit_code == reported.exit_code == 1
    assert "kubernetes-public-without-allow" in reported.output
    assert not (tmp_path / "out").exists()


def test_cli_unknown_environment_is_a_usage_error() -> None:
    path = str(REPO / "examples" / "fraud-scoring")
    result = CliRunner().invoke(cli, ["report", path, "--env", "prd"])
    assert result.exit_code == 2 and "did you mean 'prod'" in result.output


def test_graph_lineage_views() -> None:
    path = str(REPO / "examples" / "fraud-scoring")
    runner = CliRunner()
    as_json = runner.invoke(cli, ["graph", path, "--env", "prod", "--view", "lineage"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["version"] == "mlplane.dev/lineage/v1"
    assert {"source": "dataSource:fraud-features", "target": "model:scorer", "kind": "reads",
            "crossBorder": False} in data["edges"]  # fmt: skip
    dot = runner.invoke(
        cli, ["graph", path, "--env", "prod", "--view", "lineage", "--format", "dot"]
    )
    assert dot.exit_code == 0 and dot.output.startswith('digraph "fraud-scoring-prod-lineage" {')
    mermaid = runner.invoke(
        cli, ["graph", path, "--env", "prod", "--view", "lineage", "--format", "mermaid"]
    )
    assert mermaid.exit_code == 0 and mermaid.output.startswith("flowchart LR\n")
    refused = runner.invoke(cli, ["graph", path, "--env", "prod", "--format", "mermaid"])
    assert refused.exit_code == 2 and "--view lineage" in refused.output
