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


def _recorded(declared: dict[str, object], live: dict[str, object]) -> dict[str, object]:
    """A Kubernetes resource's outputs: the live object, with the declared one under __inputs."""
    return {"__inputs": declared, **live, "metadata": {"resourceVersion": "1"}}


def test_an_element_added_to_a_declared_list_is_named_from_the_live_object() -> None:
    # The provider cuts the refreshed __inputs to the declared shape, so the extra rule is only
    # in the live object; both copies of __inputs are equal.
    extra = [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
    old = _recorded(_policy(8080), _policy(8080))
    new = _recorded(_policy(8080), _policy(8080, extra))
    assert changes.changed_paths(old, new) == ("spec.ingress[1]",)
    # An apply's refresh records the grown live object, and the engine's diff (on the cut copy)
    # leaves the element in place: drift still names it, against the declared list.
    assert changes.changed_paths(new, new) == ("spec.ingress[1]",)


def test_an_element_added_to_a_nested_declared_list_is_named() -> None:
    live = _policy(8080)
    grown = {"spec": {"ingress": [{"ports": [{"port": 8080}, {"port": 22}]}], "podSelector": {}}}
    old, new = _recorded(_policy(8080), live), _recorded(_policy(8080), grown)
    assert changes.changed_paths(old, new) == ("spec.ingress[0].ports[1]",)


def test_equal_declared_and_live_lists_are_not_drift() -> None:
    state = _recorded(_policy(8080), _policy(8080))
    assert changes.changed_paths(state, state) == ()


def test_lists_the_resource_does_not_declare_are_not_drift() -> None:
    # Controllers add to lists the spec never declared (conditions, finalizers): not drift.
    old = _recorded(_policy(8080), {**_policy(8080), "finalizers": ["a"]})
    new = _recorded(_policy(8080), {**_policy(8080), "finalizers": ["a", "b"]})
    assert changes.changed_paths(old, new) == ()


def test_a_removed_element_is_named_once() -> None:
    two = _policy(8080, [{"ports": [{"port": 9090}]}])
    old = _recorded(two, two)
    new = _recorded(_policy(8080), _policy(8080))
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
