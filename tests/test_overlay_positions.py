"""The effective document's position tables hold exactly the entries of the base tables less
the replaced subtrees, plus the overlay's entries moved to their paths, in the order a filter of
the base tables gives (``overlay._positions`` deletes and adds instead of filtering)."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core.diagnostics import Diagnostics, SpecPath
from mlplane.compiler.frontend import overlay
from mlplane.compiler.frontend.document import Document, assemble
from mlplane.compiler.frontend.loader import load_bytes
from tests.hypothesis_profiles import examples

KEYS = st.sampled_from(["a", "b", "c", "models", "m1", "m2"])
SCALARS = st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y", "1.5", "true"]), st.none())
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
SECTIONS = st.dictionaries(st.sampled_from(list(overlay.OVERRIDABLE)), TREES, max_size=3)


def _reference(document: Document, table: dict[SpecPath, Any], env: str) -> dict[SpecPath, Any]:
    """The tables as a copy: every base entry outside a replaced subtree, then the overlay's."""
    overrides = overlay.overrides_of(document, env)
    assert overrides is not None
    prefix: SpecPath = ("environments", env, "overrides")
    replaced: list[SpecPath] = []
    added: list[tuple[SpecPath, SpecPath]] = []
    overlay._merge(document.data, overrides, (), prefix, replaced, added)
    gone = set(replaced)
    found = {
        path: item
        for path, item in table.items()
        if not any(path[:depth] in gone for depth in range(len(path) + 1))
    }
    for target, source in added:
        for path, item in table.items():
            if path[: len(source)] == source:
                found[(*target, *path[len(source) :])] = item
    return found


@settings(max_examples=examples(150), deadline=None)
@given(SECTIONS, SECTIONS)
def test_effective_tables_equal_the_filtered_tables(base: dict[str, Any], written: Any) -> None:
    spec = {**base, "environments": {"dev": {"overrides": written}}}
    text = yaml.safe_dump(spec, sort_keys=False)
    loaded, problems = load_bytes(text.encode(), "spec.yaml")
    assert loaded is not None, problems
    found = Diagnostics()
    document = assemble([loaded], found)
    assert not found.has_errors
    if overlay.overrides_of(document, "dev") is None:
        assert overlay.apply_overlay(document, "dev") is document
        return
    effective = overlay.apply_overlay(document, "dev")
    for name in ("values", "keys", "raw"):
        table = getattr(document, name)
        expected = _reference(document, table, "dev")
        layered = getattr(effective, name)
        assert type(layered) is dict
        assert list(layered.items()) == list(expected.items())
        assert len(layered) == len(expected)
        probes = set(table) | set(expected) | {(*p, "zz") for p in expected} | {("nope",)}
        for path in probes:
            assert layered.get(path) == expected.get(path)
            assert (path in layered) == (path in expected)
