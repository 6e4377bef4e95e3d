"""The Kubernetes lowering's name checks (``targets/kubernetes/checks.py``, ``check_names``)
hold only the names taken twice for the collision check and sort only the labels of objects
with a value over the limit; these tests hold them to checking every claim, every logical name
and every object's labels: the same diagnostics in the same order, for any names, kinds,
origins and labels."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.build.pipeline import compile_spec
from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics, Location
from mlplane.compiler.core.graph import Resource
from mlplane.targets.kubernetes import checks, codes
from mlplane.targets.kubernetes.context import Claim, Lowering

SYSTEM = compile_spec(Path(__file__).parent.parent / "examples" / "fraud-scoring").systems["prod"]
KINDS = ("Service", "CronJob", "Deployment", "Namespace", "ConfigMap")

names = st.one_of(
    st.sampled_from(["a", "b", "scorer", "1x", "x" * 63, "y" * 64, "c" * 53]),
    st.text("ab-1", min_size=1, max_size=6),
)
origins = st.builds(
    ir.Origin,
    st.tuples(st.sampled_from(["models", "slas"]), st.sampled_from(["m", "n"])),
    st.builds(Location, st.just("spec.yaml"), st.integers(1, 5), st.integers(1, 3)),
)
claims = st.lists(st.builds(Claim, st.sampled_from(KINDS), names, origins), max_size=25)
labels = st.dictionaries(
    st.sampled_from(["app", "tier", "model", "z"]),
    st.sampled_from(["", "v", "w" * 63, "w" * 64, "q" * 90]),
    max_size=4,
)
metadata = st.one_of(st.just({}), st.builds(lambda found: {"labels": found}, labels))
resources = st.lists(
    st.builds(
        Resource,
        st.just("kubernetes:core/v1:ConfigMap"),
        names,
        metadata.map(lambda meta: {"metadata": meta} if meta else {}),
        origins,
    ),
    max_size=25,
)


def _every_name(lowering: Lowering) -> None:
    """The checks as they were written first: every claim and logical name to the collision
    check, every object's labels sorted."""
    for claim in lowering.claims:
        checks._check_length(lowering, claim)
    logical = [Claim("resource", r.name, r.origin) for r in lowering.resources]
    checks._check_collisions(lowering, lowering.claims, logical)
    for resource in lowering.resources:
        for key, value in sorted(resource.inputs.get("metadata", {}).get("labels", {}).items()):
            if len(value) > checks.LABEL_VALUE_LIMIT:
                lowering.diagnostics.error(
                    codes.NAME_TOO_LONG,
                    f"the label {key} would be {value!r} ({len(value)} characters); Kubernetes "
                    f"label values have at most {checks.LABEL_VALUE_LIMIT}",
                    resource.origin.location,
                    resource.origin.path,
                )


@settings(max_examples=300, deadline=None)
@given(claims, resources)
def test_the_name_checks_report_what_checking_every_name_reports(
    taken: list[Claim], lowered: list[Resource]
) -> None:
    fast = Lowering(SYSTEM, Diagnostics(), list(lowered), list(taken))
    every = Lowering(SYSTEM, Diagnostics(), list(lowered), list(taken))
    checks.check_names(fast)
    _every_name(every)
    assert fast.diagnostics.items == every.diagnostics.items


def test_the_checks_report_collisions_long_names_and_labels() -> None:
    """The property above is not vacuous: each kind of report is made."""
    origin = ir.Origin(("models", "m"), Location("spec.yaml", 1, 1))
    taken = [Claim("Service", "1x", origin), Claim("Service", "a", origin)] * 2
    lowered = [
        Resource(
            "kubernetes:core/v1:ConfigMap", "r", {"metadata": {"labels": {"a": "w" * 64}}}, origin
        )
    ] * 2
    lowering = Lowering(SYSTEM, Diagnostics(), lowered, taken)
    checks.check_names(lowering)
    found = [(d.code, d.message.split(" ")[:3]) for d in lowering.diagnostics.items]
    assert {code for code, _ in found} == {
        codes.NAME_INVALID,
        codes.NAME_COLLISION,
        codes.NAME_TOO_LONG,
    }
    assert sum(code == codes.NAME_COLLISION for code, _ in found) == 3
