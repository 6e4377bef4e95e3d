"""The plan tells the truth: for each kind of change, the resources `mlplane plan --base applied`
says will be created, updated, replaced or deleted are exactly the steps of the real engine's
preview of the same working tree, against the same stack. A mismatch is a bug in the plan's
tables (replace fields, drag-along, ignoreChanges) or in the program."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Repo, engine_preview, plan_actions

pytestmark = pytest.mark.e2e

Spec = dict[str, Any]


def _replicas(spec: Spec) -> None:
    serving = spec["environments"]["dev"]["overrides"]["models"]["scorer"]["serving"]
    serving["replicas"] = {"min": 1, "max": 3}


def _objective(spec: Spec) -> None:
    spec["slas"]["scorer-availability"]["objective"] = 99.9


def _new_model(spec: Spec) -> None:
    challenger = copy.deepcopy(spec["models"]["scorer"])
    challenger.pop("training", None)
    spec["models"]["challenger"] = challenger


def _removed_source(spec: Spec) -> None:
    removed = "card-transactions"
    del spec["dataSources"][removed]
    for source in spec["dataSources"].values():
        if removed in source.get("derivedFrom", ()):
            source["derivedFrom"] = [s for s in source["derivedFrom"] if s != removed]
            if not source["derivedFrom"]:
                del source["derivedFrom"]
    spec["slas"] = {k: v for k, v in spec["slas"].items() if v.get("dataSource") != removed}
    spec["waivers"] = [w for w in spec["waivers"] if removed not in w["target"]]


def _replaced(spec: Spec) -> None:
    # The model's data-source ConfigMap carries the URI: ConfigMap data forces a replacement.
    spec["dataSources"]["fraud-features"]["uri"] = "feast://fraud/v2"


CHANGES: dict[str, Callable[[Spec], None]] = {
    "replicas": _replicas,
    "sla-objective": _objective,
    "new-model": _new_model,
    "removed-data-source": _removed_source,
    "forced-replace": _replaced,
}


def test_plan_equals_the_engines_preview(repo_factory: Any) -> None:
    repo: Repo = repo_factory("fraud-scoring")
    original = repo.spec_file.read_text(encoding="utf-8")
    repo.mlplane("apply", "--env", "dev", "--yes")
    try:
        seen: dict[str, dict[str, str]] = {}
        for label, change in CHANGES.items():
            spec = repo.spec()
            change(spec)
            repo.write_spec(spec)
            planned = plan_actions(repo, "--base", "applied")
            previewed = engine_preview(repo)
            assert planned, f"{label}: the plan shows no change"
            assert planned == previewed, (
                f"{label}: plan and engine disagree\n"
                f"  only in the plan:   {sorted(set(planned.items()) - set(previewed.items()))}\n"
                f"  only in the engine: {sorted(set(previewed.items()) - set(planned.items()))}"
            )
            seen[label] = planned
            repo.spec_file.write_text(original, encoding="utf-8")
        actions = {action for planned in seen.values() for action in planned.values()}
        assert actions == {"create", "update", "replace", "delete"}, seen
    finally:
        repo.spec_file.write_text(original, encoding="utf-8")
        repo.mlplane("destroy", "--env", "dev", "--yes")
