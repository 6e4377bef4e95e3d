"""Drift names the fields that changed, and the engine runs the project's program inline.

The shapes below are the ones the real Kubernetes provider records (seen on the e2e cluster:
``__inputs`` overwritten with the live values of the declared fields on refresh); the e2e tier
(tests/e2e/) checks the same against the real engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlplane.compiler.deploy import changes
from mlplane.compiler.deploy.engine import inline_program
from mlplane.compiler.deploy.stack import PATCH_FORCE, engine_settings


def _policy(port: int, extra: list[dict[str, object]] | None = None) -> dict[str, object]:
    ingress: list[dict[str, object]] = [{"ports": [{"port": port, "protocol": "TCP"}]}]
    return {"spec": {"ingress": ingress + (extra or []), "podSelector": {}}}


def test_kubernetes_inputs_name_the_changed_field() -> None:
    old = {"__inputs": _policy(8080), "metadata": {"resourceVersion": "1"}, "spec": {}}
    new = {"__inputs": _policy(9999), "metadata": {"resourceVersion": "7"}, "spec": {}}
    assert changes.changed_paths(old, new) == ("spec.ingress[0].ports[0].port",)


def test_an_added_list_element_is_named() -> None:
    extra = [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
    old, new = {"__inputs": _policy(8080)}, {"__inputs": _policy(8080, extra)}
    assert changes.changed_paths(old, new) == ("spec.ingress[1]",)


def test_server_bookkeeping_is_not_drift() -> None:
    old = {"metadata": {"resourceVersion": "1", "generation": 1, "labels": {"a": "1"}}}
    new = {"metadata": {"resourceVersion": "2", "generation": 2, "labels": {"a": "2"}}}
    old["status"], new["status"] = {"ready": 1}, {"ready": 0}
    assert changes.changed_paths(old, new) == ("metadata.labels.a",)


def test_paths_are_bounded_and_missing_state_names_nothing() -> None:
    old = {"items": list(range(100))}
    new = {"items": list(range(100, 200))}
    assert len(changes.changed_paths(old, new)) == changes.MAX_PATHS
    assert changes.changed_paths(None, new) == ()
    assert changes.changed_paths(old, None) == ()


def test_the_spec_owns_its_fields_unless_the_environment_says_otherwise() -> None:
    assert engine_settings({}) == {PATCH_FORCE: "true"}
    assert engine_settings({PATCH_FORCE: "false"}) == {PATCH_FORCE: "false"}


def test_inline_program_runs_main_as_pulumi_would_and_restores_the_process(
    tmp_path: Path,
) -> None:
    project = tmp_path / "pulumi"
    (project / "mlplane_parts").mkdir(parents=True)
    (project / "mlplane_parts" / "__init__.py").write_text("VALUE = 'sibling'\n")
    (project / "__main__.py").write_text(
        "import os, mlplane_parts\nRUNS.append((__name__, mlplane_parts.VALUE, os.getcwd()))\n"
    )
    runs: list[tuple[str, str, str]] = []
    program = inline_program(project)
    before_path, before_cwd = list(sys.path), Path.cwd()
    builtins = __import__("builtins")
    builtins.RUNS = runs
    try:
        program()
        program()  # preview, then up: the engine runs the program twice in one process
    finally:
        del builtins.RUNS
        sys.modules.pop("mlplane_parts", None)
    assert runs == [("__main__", "sibling", str(project))] * 2
    assert sys.path == before_path
    assert Path.cwd() == before_cwd
