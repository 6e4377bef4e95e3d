"""The target seam holds for a target ``compiler/`` knows nothing of (``tests/fake_target.py``).

Everything the compiler needs to know about a target's settings comes from the target through
``compiler/core/plugins.py``: the residency its settings imply (and the located contradiction
with a declared one), its own risk flags with their meaning and note, a risk on a model field,
a risk on a setting, and what a change of a model's serving resource does to the live model.
The fake installs itself as ``kubernetes`` and derives all of these from its own small rules,
so each test would fail if the compiler still read them from a table of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.core import codes
from tests import fake_target
from tests.specs import BASE, compile_text
from tests.test_plan import committed, plan_json

DEV = "  dev:\n    target: kubernetes\n"


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_target.install(monkeypatch)


def with_dev(settings: str, text: str = BASE) -> str:
    """``text`` with ``settings`` (indented lines) added to the dev environment."""
    assert text.count(DEV) == 1
    return text.replace(DEV, DEV + settings)


def risks(document: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [r for r in document["risks"] if r["code"] == code]


def test_the_residency_is_the_one_the_target_settings_imply(tmp_path: Path) -> None:
    result = compile_text(tmp_path, with_dev("    kubernetes: {context: kind@eu}\n"), ["dev"])
    assert result.ok, result.sorted_diagnostics()
    assert result.systems["dev"].environment.residency == "eu"
    plain = compile_text(tmp_path, BASE, ["dev"])
    assert plain.systems["dev"].environment.residency is None


def test_a_declared_residency_the_settings_contradict_is_located(tmp_path: Path) -> None:
    settings = "    residency: us\n    kubernetes: {context: kind@eu}\n"
    result = compile_text(tmp_path, with_dev(settings), ["dev"])
    [found] = [d for d in result.sorted_diagnostics() if d.code == codes.CONTRADICTION]
    assert found.message == (
        "environment 'dev' declares residency 'us', but its cluster context 'kind@eu' is in 'eu'"
    )
    assert found.location is not None and found.location.line == 9  # residency: us
    [related] = found.related
    assert related.message == "context 'kind@eu' is in 'eu'"
    assert related.location.line == 10  # the context's line
    assert (
        found.hint
        == "remove residency (it is derived from the context) or choose a context in 'us'"
    )


def test_the_target_own_setting_risk_has_its_meaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = committed(tmp_path, monkeypatch, with_dev("    kubernetes: {context: one}\n"))
    repo.edit("spec/mlplane.yaml", "context: one", "context: two")
    [risk] = risks(plan_json(), fake_target.CONTEXT_CHANGED)
    assert risk["meaning"] == "the fake target's cluster context changes"
    assert risk["message"] == "environment dev: cluster context one → two"
    assert risk["source"]["path"] == "environments.dev.kubernetes.context"


def test_a_model_risk_and_a_redeploy_of_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = BASE.replace(DEV, "  dev:\n    target: kubernetes\n    production: true\n")
    repo = committed(tmp_path, monkeypatch, production)
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 1, max: 4}")
    document = plan_json()
    [lowered] = risks(document, fake_target.CAPACITY_LOWERED)
    assert lowered["meaning"] == "a model's minimum replicas go down on the fake target"
    assert lowered["message"] == (
        "model scorer: replicas 2–4 → 1–4: fewer pods serve the same traffic"
    )
    [redeployed] = risks(document, "production-model-redeployed")
    assert redeployed["message"].startswith("model scorer: rescaled to 1 pods (rolling update)")
    lines = [c["text"] for c in document["specChanges"]]
    assert "model scorer: rescaled to 1 pods (rolling update)" in lines


def test_a_raised_replicas_minimum_is_no_risk_of_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = committed(tmp_path, monkeypatch, BASE)
    repo.edit("spec/mlplane.yaml", "replicas: {min: 2, max: 4}", "replicas: {min: 3, max: 4}")
    document = plan_json()
    assert risks(document, fake_target.CAPACITY_LOWERED) == []
    assert "model scorer: replicas 2–4 → 3–4" in [c["text"] for c in document["specChanges"]]


def test_the_language_names_exactly_the_installed_targets() -> None:
    """The one place a new target still needs an edit outside its package (docs/architecture.md,
    Adding a target): ``environments.<env>.target`` and the environment's settings blocks."""
    from importlib.metadata import entry_points
    from typing import get_args

    from mlplane.compiler.core.plugins import TARGET_GROUP
    from mlplane.schema import models as spec

    installed = {entry.name for entry in entry_points(group=TARGET_GROUP)}
    named = set(get_args(spec.Environment.model_fields["target"].annotation))
    assert named == installed
    assert named <= set(spec.Environment.model_fields), "each target has its settings block"
