"""The schema pass of an environment's overlaid document takes what the overlay left unchanged
from the base document's validated spec (``schema_pass._reusing``) instead of validating it
again. These tests hold that to validating the overlaid document from scratch: the same spec,
field for field, and the same errors, for the examples, the corpus, the benchmark spec and
overlays that break entries of every table."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.frontend.document import Document
from mlplane.compiler.frontend.overlay import apply_overlay
from mlplane.compiler.frontend.resolve import Resolver
from mlplane.compiler.frontend.schema_pass import validate_document
from mlplane.schema.models import MLSystem
from tests.specs import BASE, write_spec

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "corpus"
SPECS = sorted([*(ROOT / "examples").iterdir(), *CORPUS.iterdir()])


def _loaded(spec: Path) -> Document | None:
    return compile_spec(spec).document


def _both(document: Document, environment: str) -> tuple[tuple[object, list[str]], ...]:
    """The overlaid document of ``environment`` validated from scratch and reusing the base:
    (spec, diagnostics) of each."""
    base = validate_document(document, Diagnostics())
    assert base is not None
    effective = apply_overlay(document, environment)
    results = []
    for reuse in (None, (document, base)):
        found = Diagnostics()
        errors: list[tuple[str | int, ...]] = []
        validated = validate_document(effective, found, frozenset(), errors, reuse)
        shown = [repr(d) for d in found] + [repr(errors)]
        results.append((validated.model_dump(by_alias=True) if validated else None, shown))
    return tuple(results)


def _overlaid(document: Document) -> list[str]:
    envs = document.data.get("environments")
    if not isinstance(envs, dict):
        return []
    return sorted(
        name for name, env in envs.items() if isinstance(env, dict) and env.get("overrides")
    )


def test_reuse_validates_as_from_scratch() -> None:
    """Every overlaid environment of the examples and of the corpus cases whose base validates
    (the others reuse nothing)."""
    compared = []
    for spec in SPECS:
        document = _loaded(spec)
        if document is None or validate_document(document, Diagnostics()) is None:
            continue
        for environment in _overlaid(document):
            scratch, reused = _both(document, environment)
            assert reused == scratch, (spec.name, environment)
            compared.append(f"{spec.name}:{environment}")
    assert len(compared) >= 5, compared


def test_the_benchmark_spec_reuses_every_unchanged_entry(tmp_path: Path) -> None:
    from tests.test_benchmarks import generate

    write_spec(tmp_path, generate.generate_spec(60, 120, 3))
    document = _loaded(tmp_path)
    assert document is not None
    base = validate_document(document, Diagnostics())
    assert base is not None
    overlaid = _overlaid(document)
    assert overlaid == ["dev", "prod"]
    for environment in overlaid:
        scratch, reused = _both(document, environment)
        assert reused == scratch and scratch[0] is not None
        effective = apply_overlay(document, environment)
        validated = validate_document(effective, Diagnostics(), base=(document, base))
        assert isinstance(validated, MLSystem)
        for name, model in validated.models.items():
            same = effective.data["models"][name] is document.data["models"][name]
            assert (model is base.models[name]) == same
        assert validated.security is not base.security  # the overlays change secrets
        assert validated.environments is not base.environments  # a new dict of the same ...
        assert all(validated.environments[n] is e for n, e in base.environments.items())


BROKEN = [
    # an entry of each table broken by the overlay, beside entries left as they were
    "      models:\n        scorer:\n          serving: {replicas: {min: -1}}\n",
    "      models:\n        scorer:\n          framework: 12\n",
    "      dataSources:\n        events:\n          classification: secretish\n",
    "      dataSources:\n        features:\n          derivedFrom: [events, events]\n",
    "      slas:\n        scorer-availability:\n          objective: 101\n",
    "      security:\n        network: {defaultDeny: maybe}\n",
    "      models:\n        scorer: null\n",
    "      models:\n        Bad_Name: {framework: sklearn}\n",
    "      waivers: [{policy: x}]\n",
]


def _with_prod_overrides(overrides: str) -> str:
    head, _, tail = BASE.partition("    overrides:\n")
    _, _, rest = tail.partition("dataSources:\n")
    return head + "    overrides:\n" + overrides + "dataSources:\n" + rest


@pytest.mark.parametrize("overrides", BROKEN)
def test_errors_of_a_broken_overlay_are_those_of_validating_from_scratch(
    tmp_path: Path, overrides: str
) -> None:
    write_spec(tmp_path, _with_prod_overrides(overrides))
    document = _loaded(tmp_path)
    assert document is not None
    scratch, reused = _both(document, "prod")
    assert reused == scratch
    assert scratch[0] is None or "null" in overrides  # the overlay broke the spec


def _built_alone(result: CompileResult) -> dict[str, ir.System]:
    """Each environment's system model built on its own, sharing nothing."""
    systems = {}
    for name, effective in result.effective.items():
        resolver = Resolver(effective.spec, effective.document, Diagnostics())
        systems[name] = resolver.build(name)
    return systems


def test_system_models_sharing_elements_equal_those_built_alone(tmp_path: Path) -> None:
    """The environments of one compile share the data sources, models and SLAs built from the
    same spec objects with the same origins and reads (``system_model.Shared``): equal to what
    each environment builds alone, and the very objects only where nothing they read differs."""
    from tests.test_benchmarks import generate

    write_spec(tmp_path, generate.generate_spec(60, 120, 5))
    result = compile_spec(tmp_path)
    assert result.ok and sorted(result.systems) == ["dev", "prod", "staging"]
    alone = _built_alone(result)
    for name, system in result.systems.items():
        assert system == alone[name]
        assert repr(system) == repr(alone[name])
    dev, prod, staging = (result.systems[n] for n in ("dev", "prod", "staging"))
    changed = {
        name
        for name, entry in apply_overlay(result.document, "prod").data["models"].items()
        if entry is not result.document.data["models"][name]
    }
    assert changed and len(changed) < len(prod.models)
    for name, model in prod.models.items():
        assert (model is staging.models[name]) == (name not in changed)
    assert any(a is b for a, b in zip(dev.slas.values(), staging.slas.values(), strict=True))


def test_an_element_is_not_shared_when_what_it_reads_differs(tmp_path: Path) -> None:
    """Lineage and owners come from outside an element: an overlay that changes them leaves the
    element's own spec object shared, yet its system model element is built again."""
    overrides = (
        "      metadata:\n        owner: prod-team\n"
        "      dataSources:\n        features:\n          derivedFrom: []\n"
    )
    write_spec(tmp_path, _with_prod_overrides(overrides))
    result = compile_spec(tmp_path)
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    alone = _built_alone(result)
    assert result.systems == alone
    dev, prod = result.systems["dev"], result.systems["prod"]
    assert prod.models["scorer"].owner == "prod-team" != dev.models["scorer"].owner
    assert prod.models["scorer"].upstream == ("features",) != dev.models["scorer"].upstream
    specs = result.effective["dev"].spec, result.effective["prod"].spec
    assert specs[0].data_sources["events"] is specs[1].data_sources["events"]
    assert prod.data_sources["events"].owner == "prod-team"
    assert dev.data_sources["events"].owner == "ml-team"


OVERRIDE_CYCLE = "      dataSources:\n        events:\n          derivedFrom: [features]\n"


def test_a_lineage_cycle_of_one_environment_is_reported_for_it_alone(tmp_path: Path) -> None:
    """Environments whose data sources derive alike share the lineage's cycles and closure
    (``system_model.Shared``); an overlay that closes a cycle has its own."""
    text = _with_prod_overrides(OVERRIDE_CYCLE)
    write_spec(tmp_path, text)
    result = compile_spec(tmp_path)
    cycles = [d for d in result.diagnostics if d.code == "lineage-cycle"]
    assert len(cycles) == 1, [d.one_line() for d in result.sorted_diagnostics()]
    (cycle,) = cycles
    assert cycle.path == "dataSources.events.derivedFrom[0]"
    overlay_line = text.splitlines().index("          derivedFrom: [features]") + 1
    assert cycle.location is not None and cycle.location.line == overlay_line
    assert "prod" not in result.systems and "dev" in result.systems
    assert result.systems["dev"].models["scorer"].upstream == ("events", "features")
