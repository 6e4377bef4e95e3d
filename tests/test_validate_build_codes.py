"""``mlplane validate`` reports every error ``mlplane build`` would refuse a spec with.

The codes come from the registry, not from a list kept here: every error code a target
registers (``targets/*/codes.py``, loaded through the installed targets) must be expected on a
line of a corpus case (``tests/corpus``, compiled as validate compiles by ``test_corpus.py``),
or be in ``ALLOWED`` with the reason no spec can show it to validate. The codes of
``compiler/core/codes.py`` are raised by the stages validate and build share (loading, schema,
overlays, references, the policy stage) and need no such case; the codes of other verbs (plan,
apply: ``compiler/plan/codes.py``; the read-back of outputs: ``compiler/core/safe_read.py``)
need none either, like the CI providers' codes (``mlplane ci``). Policy rules: system rules run in validate as in build
(``policy_cases/all-violations.yaml`` has a finding of each); graph rules read a lowered graph,
which validate does not build (lowering the three environments of the benchmark spec costs
about twice a validate), so they are in ``ALLOWED`` and a test below shows that no example or
corpus spec makes a built-in target's graph break one.

Beyond the codes, each corpus case and example is lowered environment by environment, as the
build lowers it, and each error the lowering reports must be one validate reported at the
same file, line, column and code.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mlplane.compiler.build.pipeline import CompileResult, compile_spec, target_of
from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import Diagnostic, Diagnostics, Severity, registered_codes
from mlplane.compiler.policy.engine import PolicyRun, installed_rules
from mlplane.compiler.policy.rego import REGO_SUMMARY
from tests.test_corpus import BYTES_CASES, CASES, case_files, expectations

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").iterdir())
TODAY = date(2026, 1, 31)

ALLOWED: dict[str, str] = {
    "aws-rollback-without-alarms": "raised by no spec: every model served on SageMaker gets a "
    "rollback alarm on its 5XX ratio (targets/aws/alarms.py), so the lowering's guard against "
    "an endpoint without one never fires",
    "kubernetes-name-too-long": "raised by no valid spec: the schema's limits (names of 40 "
    "characters, 20 for environments) keep every generated name within its kind's limit (the "
    "longest, <model>-training, is a CronJob of 49 of 52); validate checks the lengths of the "
    "planned names anyway (targets/kubernetes/name_plan.py)",
    "kubernetes-kubeflow-unavailable": "depends on the machine, not the spec (the kfp SDK is "
    "not installed), so no corpus case can show it where kfp is installed; validate looks the "
    "SDK up without importing it (test below)",
}
"""Target error codes without a corpus case, and why no spec shows them to validate."""


def _load_codes() -> None:
    """Register every code a build can raise: the installed targets' code modules (some load
    lazily, such as the AWS alarms'), the emitters' and the policy packs'."""
    for target in plugins.targets().values():
        package = importlib.import_module(type(target).__module__)
        for module in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if module.name.endswith("codes"):
                importlib.import_module(f"{package.__name__}.{module.name}")
    plugins.emitters()
    installed_rules()


_OTHER_VERBS = (
    "mlplane.compiler.plan.codes",
    "mlplane.compiler.core.safe_read",
    "mlplane.targets.ci.codes",
)


def _other_verbs() -> set[str]:
    """Codes of plan, apply and the read-back of outputs, and those of ``mlplane ci``."""
    found: set[str] = set()
    for name in _OTHER_VERBS:
        module = importlib.import_module(name)
        found |= {value for value in vars(module).values() if isinstance(value, str)}
    return found - codes.CORE_CODES


def target_error_codes() -> set[str]:
    _load_codes()
    rules = {rule.id for rule in installed_rules()}
    skipped = codes.CORE_CODES | _other_verbs() | rules
    return {
        info.code
        for info in registered_codes()
        if info.severity is Severity.ERROR
        and info.code not in skipped
        and info.summary != REGO_SUMMARY  # organisation policies other tests loaded
    }


def corpus_error_codes() -> set[str]:
    found = {code for _, code in (e for item in BYTES_CASES for e in item.expected)}
    for case in CASES:
        for path in case_files(case):
            found |= {code for _, _, kind, code in expectations(path) if kind == "error"}
    return found


def test_every_target_error_is_expected_on_a_corpus_case_or_allowed_with_a_reason() -> None:
    every = target_error_codes()
    assert {"kubernetes-name-collision", "aws-receiver-not-lowered"} <= every  # loaded
    missing = sorted(every - corpus_error_codes() - set(ALLOWED))
    assert not missing, (
        f"error codes a build can raise with no corpus case expecting them: {missing}; add a "
        "case to tests/corpus (validate must report them), or a reason to ALLOWED"
    )


def test_the_allowed_codes_are_registered_errors_without_a_corpus_case() -> None:
    every = target_error_codes()
    assert set(ALLOWED) <= every
    assert not set(ALLOWED) & corpus_error_codes(), "a corpus case shows it: drop it from ALLOWED"


def _specs() -> Iterator[Path]:
    yield from EXAMPLES
    yield from CASES


SPECS = list(_specs())


def _keys(diagnostics: Diagnostics, severity: Severity) -> set[tuple[str, int, int, str]]:
    return {
        (d.location.file, d.location.line, d.location.column, d.code)
        for d in diagnostics
        if d.severity is severity and d.location is not None
    }


def _not_validated(spec: Path, severity: Severity) -> Iterator[tuple[str, list[Any]]]:
    """Each environment of ``spec`` with what its lowering reports at ``severity`` that
    validate did not report."""
    result = compile_spec(spec, check_targets=True)  # as mlplane validate compiles
    validated = _keys(result.diagnostics, severity)
    for name, system in sorted(result.systems.items()):
        found = Diagnostics()
        target = target_of(system, found)
        assert target is not None
        target.lower(system, found)
        yield name, sorted(_keys(found, severity) - validated)


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_what_a_lowering_refuses_validate_reported(spec: Path) -> None:
    for name, missing in _not_validated(spec, Severity.ERROR):
        assert not missing, f"{name}: the build refuses, validate does not: {missing}"


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_what_a_lowering_warns_or_notes_validate_reported(spec: Path) -> None:
    """Not only the errors: each warning a lowering reports (an egress left open to every
    address, traffic between pods left unencrypted) and each note (a workload's default CPU
    and memory, a volume SageMaker refuses a KMS key for) validate reports too, at the same
    place.
    A spec whose schema or references fail is never lowered by the build, so there is no
    lowering's warning to compare (the targets' checks do not run on it either)."""
    if compile_spec(spec).diagnostics.has_errors:
        assert not compile_spec(spec, policies=True, lower=True, today=TODAY).graphs
        return
    for name, missing in _not_validated(spec, Severity.WARNING):
        assert not missing, f"{name}: the build warns, validate does not: {missing}"
    for name, missing in _not_validated(spec, Severity.INFO):
        assert not missing, f"{name}: the build notes, validate does not: {missing}"


def _lowered(result: CompileResult) -> Iterator[tuple[ir.System, object]]:
    for system in result.systems.values():
        found = Diagnostics()
        target = target_of(system, found)
        graph = target.lower(system, found) if target is not None else None
        if graph is not None:
            yield system, graph


def test_no_spec_makes_a_built_in_target_break_a_built_in_graph_rule() -> None:
    """Why graph rules are allowed to run only in the build: the built-in targets lower
    graphs that pass the built-in rules, on every example and valid corpus environment."""
    graph_rules = [rule for rule in installed_rules() if rule.reads_graph]
    assert graph_rules
    run = PolicyRun(today=TODAY, rules=tuple(graph_rules))
    checked = 0
    for spec in SPECS:
        for system, graph in _lowered(compile_spec(spec)):
            found, waived = Diagnostics(), Diagnostics()
            run.check_graph(system, graph, found, waived)  # type: ignore[arg-type]
            errors = [d.one_line() for d in found if d.severity is Severity.ERROR]
            assert not errors, f"{spec.name} {system.environment.name}: {errors}"
            checked += system.environment.target == "aws"
    assert checked >= 2  # AWS environments, whose graphs the built-in graph rules read


def _kubeflow_spec(tmp_path: Path) -> Path:
    from tests.specs import write_spec
    from tests.test_kubeflow import spec, training

    return write_spec(tmp_path, spec(training()))


def _validated(path: Path) -> list[Diagnostic]:
    result = compile_spec(path, ["dev"], check_targets=True)
    return [d for d in result.diagnostics if d.severity is Severity.ERROR]


def test_validate_reports_a_missing_kubeflow_sdk_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _kubeflow_spec(tmp_path)
    assert not _validated(path)
    monkeypatch.setitem(sys.modules, "kfp", None)  # not installed
    errors = _validated(path)
    assert [d.code for d in errors] == ["kubernetes-kubeflow-unavailable"]
    assert errors[0].path == "models.scorer.training"
