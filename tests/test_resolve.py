"""Resolution and the system model: references, lineage, defaults and parsed units."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import UnknownEnvironmentError, compile_spec
from mlplane.compiler.core.lineage import closure, find_cycles
from mlplane.targets.aws.settings import aws_of
from tests.specs import BASE, codes_of, compile_text, write_spec


def test_system_model_parses_units_and_defaults(tmp_path: Path) -> None:
    result = compile_text(tmp_path, BASE)
    assert result.ok
    dev, prod = result.systems["dev"], result.systems["prod"]
    assert dev.environment.namespace == "demo-dev"
    assert not dev.environment.production and prod.environment.production
    scorer = dev.models["scorer"]
    assert scorer.serving.resources.cpu_millis == 500
    assert scorer.serving.resources.memory_bytes == 2**30
    assert scorer.owner == "ml-team"  # inherited from metadata
    assert scorer.upstream == ("events", "features")  # lineage followed transitively
    assert scorer.image.registry == "ghcr.io" and scorer.image.digest is not None
    assert dev.data_sources["events"].freshness_seconds == 300
    assert dev.slas["scorer-availability"].window_seconds == 30 * 86400
    assert dev.slas["scorer-availability"].subject_kind == "model"
    assert list(dev.models) == sorted(dev.models)


def test_model_origin_is_the_models_key(tmp_path: Path) -> None:
    result = compile_text(tmp_path, BASE)
    origin = result.systems["dev"].models["scorer"].origin
    assert origin.path == ("models", "scorer")
    assert origin.location.line == BASE.splitlines().index("  scorer:") + 1
    assert origin.location.column == 3


def test_undefined_input_with_did_you_mean(tmp_path: Path) -> None:
    spec = BASE.replace("inputs: [features]", "inputs: [featres]")
    result = compile_text(tmp_path, spec)
    [diagnostic] = result.sorted_diagnostics()
    assert diagnostic.code == "ref-undefined"
    assert "did you mean 'features'" in diagnostic.message
    assert diagnostic.path == "models.scorer.inputs[0]"
    assert diagnostic.location is not None
    assert (
        diagnostic.location.column
        == spec.splitlines()[diagnostic.location.line - 1].index("featres") + 1
    )


def test_lineage_cycle_lists_the_cycle(tmp_path: Path) -> None:
    spec = BASE.replace(
        "    residency: eu\n", "    residency: eu\n    derivedFrom: [features]\n", 1
    )
    result = compile_text(tmp_path, spec)
    [diagnostic] = result.sorted_diagnostics()
    assert diagnostic.code == "lineage-cycle"
    assert "events -> features -> events" in diagnostic.message
    assert len(diagnostic.related) == 1


def test_sla_subjects_and_drift_need_monitoring(tmp_path: Path) -> None:
    spec = BASE + (
        "  scorer-drift:\n    model: scorer\n    objective: 99\n    indicator: {drift: {threshold: 0.2}}\n"
        "  ghost:\n    model: ghost\n    objective: 99\n    indicator: availability\n"
    )
    result = compile_text(tmp_path, spec)
    assert sorted(codes_of(result)) == ["indicator-mismatch", "ref-undefined"]


def test_unused_secret_is_a_warning_only(tmp_path: Path) -> None:
    spec = BASE + "security:\n  secrets:\n    token: {ref: 'vault://a/b'}\n"
    result = compile_text(tmp_path, spec)
    assert result.ok
    [diagnostic] = result.sorted_diagnostics()
    assert (diagnostic.code, diagnostic.severity) == ("unused-definition", "warning")


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownEnvironmentError, match="did you mean 'prod'"):
        compile_spec(write_spec(tmp_path, BASE), ["prdo"])


def test_aws_environment_residency_from_region(tmp_path: Path) -> None:
    spec = BASE.replace(
        "  dev:\n    target: kubernetes\n",
        "  dev:\n    target: aws\n    aws: {region: eu-west-2, accountId: '123456789012'}\n",
    )
    result = compile_text(tmp_path, spec)
    assert result.ok, codes_of(result)
    env = result.systems["dev"].environment
    assert (env.target, aws_of(env).aws_region, env.residency) == ("aws", "eu-west-2", "uk")


def test_find_cycles_and_closure() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": ["a", "missing"], "f": []}
    assert find_cycles(graph) == [["a", "b", "c"], ["d"]]
    assert closure({"a": ["b"], "b": ["c"], "c": [], "x": ["a", "c"]}) == {
        "a": ("b", "c"),
        "b": ("c",),
        "c": (),
        "x": ("a", "b", "c"),
    }


def test_long_lineage_chain_has_no_recursion_limit() -> None:
    graph = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    graph["n5000"] = ["n0"]
    [cycle] = find_cycles(graph)
    assert len(cycle) == 5001
