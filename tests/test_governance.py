"""Governance changes between two revisions of a spec (compiler/core/governance.py)."""

from __future__ import annotations

from pathlib import Path

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.governance import governance_diff

REPO = Path(__file__).resolve().parents[1]
SPEC = (REPO / "examples" / "fraud-scoring" / "mlplane.yaml").read_text()


def _system(text: str, tmp_path: Path, name: str) -> ir.System:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "mlplane.yaml").write_text(text)
    result = compile_spec(folder, ["prod"])
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    return result.systems["prod"]


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_no_change_no_governance_change(tmp_path: Path) -> None:
    base = _system(SPEC, tmp_path, "base")
    diff = governance_diff(base, _system(SPEC, tmp_path, "head"))
    assert diff.changes == () and diff.edges_added == () and diff.edges_removed == ()


def test_every_kind_of_governance_change(tmp_path: Path) -> None:
    head = SPEC
    head = _replace(
        head, "    residency: eu\n    retention: 730d", "    residency: us\n    retention: 730d"
    )
    head = _replace(head, "    explainability: {required: true, method: shap}\n", "")
    head = _replace(
        head,
        "    monitoring:\n      drift:\n        method: psi\n        threshold: 0.2\n"
        "        features: [amount, merchant_category, card_present, hour_of_day]\n",
        "",
    )
    head = _replace(
        head,
        "  scorer-drift:\n    model: scorer\n    objective: 99\n    window: 7d\n"
        "    indicator: {drift: {threshold: 0.2}}\n",
        "",
    )  # a drift SLA needs the monitor
    head = _replace(head, 'expires: "2027-03-31"', 'expires: "2027-09-30"')
    head = _replace(
        head,
        "waivers:\n",
        "waivers:\n  - {policy: models.ha-replicas, target: models.scorer, reason: load test until 2026-12, "
        "owner: risk-ml, expires: '2026-12-31'}\n",
    )
    head = _replace(
        head,
        "\nsecurity:\n",
        "  auditor:\n    framework: sklearn\n    version: '1.0.0'\n"
        "    image: ghcr.io/acme/auditor@sha256:" + "1" * 64 + "\n"
        "    inputs: [fraud-features]\n"
        "    serving: {replicas: {min: 2, max: 2}, resources: {cpu: '1', memory: 1Gi}}\n"
        "\nsecurity:\n",
    )
    diff = governance_diff(_system(SPEC, tmp_path, "base"), _system(head, tmp_path, "head"))
    seen = [(c.kind, c.subject) for c in diff.changes]
    assert seen == [
        ("drift-monitor-dropped", "models.scorer"),
        ("explainability-dropped", "models.scorer"),
        ("personal-data-consumer-added", "models.auditor"),
        ("personal-data-consumer-added", "models.auditor"),
        ("residency-crossing-added", "dataSource:merchant-profiles -> dataSource:fraud-features"),
        ("waiver-added", "models.ha-replicas on models.scorer"),
        ("waiver-extended", "data.retention-bounded on dataSources.card-transactions"),
    ]
    texts = [c.text for c in diff.changes if c.subject == "models.auditor"]
    assert texts == [
        "model 'auditor' now reads pii data source 'card-transactions'",
        "model 'auditor' now reads pii data source 'fraud-features'",
    ]
    added = {(e.source, e.target, e.kind) for e in diff.edges_added}
    assert ("dataSource:fraud-features", "model:auditor", "reads") in added
    assert not diff.edges_removed or all(
        e.kind != "reads" or e.target != "model:scorer" for e in diff.edges_removed
    )


def test_first_deployment_counts_every_consumer(tmp_path: Path) -> None:
    diff = governance_diff(None, _system(SPEC, tmp_path, "head"))
    kinds = {c.kind for c in diff.changes}
    assert kinds == {"personal-data-consumer-added", "waiver-added"}
    assert len(diff.edges_added) > 0
