"""Environment overlays: maps merge, lists and scalars replace, null removes, origins are kept."""

from __future__ import annotations

from pathlib import Path

from tests.specs import BASE, codes_of, compile_text


def _with_prod_overrides(overrides: str) -> str:
    head, _, tail = BASE.partition("    overrides:\n")
    _, _, rest = tail.partition("dataSources:\n")
    return head + "    overrides:\n" + overrides + "dataSources:\n" + rest


def test_maps_merge_and_scalars_replace(tmp_path: Path) -> None:
    result = compile_text(tmp_path, BASE)
    assert result.ok, codes_of(result)
    dev, prod = result.systems["dev"], result.systems["prod"]
    assert (
        dev.models["scorer"].serving.replicas_min,
        dev.models["scorer"].serving.replicas_max,
    ) == (2, 4)
    assert (
        prod.models["scorer"].serving.replicas_min,
        prod.models["scorer"].serving.replicas_max,
    ) == (3, 9)
    # untouched siblings of the overridden map survive the merge
    assert prod.models["scorer"].serving.resources.cpu_millis == 500


def test_origins_point_at_the_overlay_line(tmp_path: Path) -> None:
    result = compile_text(tmp_path, BASE)
    prod = result.systems["prod"]
    path = ("models", "scorer", "serving", "replicas", "min")
    overlay_line = BASE.splitlines().index("            replicas: {min: 3, max: 9}") + 1
    base_line = BASE.splitlines().index("      replicas: {min: 2, max: 4}") + 1
    location = prod.locate(path)
    assert location is not None and location.line == overlay_line
    dev_location = result.systems["dev"].locate(path)
    assert dev_location is not None and dev_location.line == base_line
    # a value the overlay did not touch keeps the base origin in prod
    cpu = prod.locate(("models", "scorer", "serving", "resources", "cpu"))
    assert cpu is not None and cpu.line == base_line + 1


def test_lists_replace_whole(tmp_path: Path) -> None:
    spec = _with_prod_overrides(
        "      dataSources:\n        features:\n          derivedFrom: []\n"
    )
    result = compile_text(tmp_path, spec)
    assert result.ok, codes_of(result)
    assert result.systems["dev"].data_sources["features"].derived_from == ("events",)
    assert result.systems["prod"].data_sources["features"].derived_from == ()
    assert result.systems["prod"].models["scorer"].upstream == ("features",)


def test_null_removes_a_key(tmp_path: Path) -> None:
    spec = _with_prod_overrides("      dataSources:\n        events:\n          freshness: null\n")
    result = compile_text(tmp_path, spec)
    assert result.ok, codes_of(result)
    assert result.systems["dev"].data_sources["events"].freshness_seconds == 300
    assert result.systems["prod"].data_sources["events"].freshness_seconds is None


def test_overlay_errors_are_located_in_the_overlay(tmp_path: Path) -> None:
    spec = _with_prod_overrides(
        "      models:\n        scorer:\n          serving:\n            replica: 3\n"
    )
    result = compile_text(tmp_path, spec)
    [diagnostic] = result.sorted_diagnostics()
    assert diagnostic.code == "unknown-field"
    assert diagnostic.location is not None
    assert diagnostic.location.line == spec.splitlines().index("            replica: 3") + 1
    assert "did you mean 'replicas'" in diagnostic.message


def test_overlay_may_add_an_entry(tmp_path: Path) -> None:
    spec = _with_prod_overrides(
        "      slas:\n        scorer-fresh:\n          dataSource: events\n          objective: 99\n"
        "          indicator: {freshness: {maxAge: 10m}}\n"
    )
    result = compile_text(tmp_path, spec)
    assert result.ok, codes_of(result)
    assert "scorer-fresh" in result.systems["prod"].slas
    assert "scorer-fresh" not in result.systems["dev"].slas


def test_system_name_cannot_vary(tmp_path: Path) -> None:
    spec = _with_prod_overrides("      metadata:\n        name: other\n")
    result = compile_text(tmp_path, spec)
    assert "override-forbidden" in codes_of(result)


def test_unknown_overlay_section(tmp_path: Path) -> None:
    spec = _with_prod_overrides("      environments: {}\n")
    result = compile_text(tmp_path, spec)
    assert codes_of(result) == ["unknown-field"]


def test_only_requested_environments_are_resolved(tmp_path: Path) -> None:
    result = compile_text(tmp_path, BASE, ["prod"])
    assert set(result.systems) == {"prod"}
