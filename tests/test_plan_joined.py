"""The graph's text joined from resources' texts, some already joined in runs, is the canonical
text of the graph (what ``graph_reusing`` writes when it copies the base's resources in a row
as one slice of the base's text)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mlplane.compiler.plan import lower as plan_lower

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@given(
    resources=st.lists(st.dictionaries(st.text(max_size=4), _VALUES, max_size=3), max_size=8),
    rest=st.dictionaries(st.sampled_from(["environment", "target", "z", "a"]), _VALUES),
    cuts=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_runs_of_pieces_join_to_the_canonical_text(
    resources: list[dict[str, Any]], rest: dict[str, Any], cuts: list[bool]
) -> None:
    document = {**rest, "resources": resources}
    texts = [plan_lower._canonical(r) for r in resources]
    runs: list[str] = []
    for index, text in enumerate(texts):
        if runs and not cuts[index]:
            runs[-1] += "," + text  # the next resource's text, in the same run
        else:
            runs.append(text)
    expected = plan_lower._canonical(document)
    assert plan_lower._joined(document, texts) == expected
    assert plan_lower._joined(document, runs) == expected
    as_bytes = plan_lower._parts(document, [r.encode("ascii") for r in runs], plan_lower._ascii)
    assert b"".join(as_bytes) == expected.encode("ascii")


def test_a_graph_without_resources_joins_as_its_other_keys() -> None:
    assert plan_lower._joined({}, []) == "{}"
    assert plan_lower._joined({"resources": [], "a": 1}, []) == '{"a":1,"resources":[]}'
