"""``yamltext.rendered``: a mapping written once for both key orders is placed, re-indented,
with the very bytes the writer gives the mapping itself, at every depth, in both orders."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core import yamltext

_TEXT = st.text(max_size=12) | st.sampled_from(["a\nb", "x\n\ny\n", "  lead\n", "on", "a: b"])
_SCALARS = st.none() | st.booleans() | st.integers() | _TEXT
_SCALARS |= st.floats(allow_nan=False, allow_infinity=False)
_KEYS = st.text(max_size=8) | st.sampled_from(["k" * 1100, "b", "a", "z"])
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=30,
)
_MAPPINGS = st.dictionaries(_KEYS, _DATA, max_size=6)


def _placed(value: Any, depth: int) -> dict[str, Any]:
    """``value`` as a mapping's value and as a sequence's item, ``depth`` mappings down."""
    data: dict[str, Any] = {"value": value, "items": [value, 1, value]}
    for level in range(depth):
        data = {f"level{level}": data, "list": [data]}
    return data


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_MAPPINGS, st.integers(0, 3), st.booleans())
def test_rendered_text_is_the_text_of_the_mapping(
    value: dict[str, Any], depth: int, sort_keys: bool
) -> None:
    shared = yamltext.rendered(value)
    expected = yamltext.dump(_placed(value, depth), sort_keys=sort_keys)
    assert yamltext.dump(_placed(shared, depth), sort_keys=sort_keys) == expected


def test_one_rendering_serves_both_orders() -> None:
    group = {
        "name": "g",
        "rules": [
            {"record": "r", "expr": "a\nor\n\nb", "labels": {"a": "1", "b": "2"}},
            {"alert": "A", "annotations": {"summary": "s", "description": "d"}, "for": "5m"},
        ],
    }
    shared = yamltext.rendered(group)
    for sort_keys in (False, True):
        document = {"spec": {"groups": [shared]}, "empty": yamltext.rendered({})}
        plain = {"spec": {"groups": [group]}, "empty": {}}
        text = yamltext.dump(document, sort_keys=sort_keys, check=True)
        assert text == yamltext.dump(plain, sort_keys=sort_keys)
    assert shared.as_given.startswith("name: g\nrules:\n  - record: r\n")
    assert "  - expr: |-\n      a\n      or\n\n      b\n" in shared.sorted_keys


def test_blocks_required_writes_the_mapping_itself() -> None:
    value = {"run": "echo a \n"}  # a trailing blank: quoted when written, refused when required
    shared = yamltext.rendered(value)
    with pytest.raises(ValueError, match="literal block"):
        yamltext.dump({"steps": [shared]}, require_blocks=True)
    with pytest.raises(ValueError, match="literal block"):
        yamltext.dump({"step": shared}, require_blocks=True)


def test_comments_cannot_be_rendered() -> None:
    with pytest.raises(TypeError, match="no comments"):
        yamltext.rendered({"uses": yamltext.Commented("a@b", "v1")})


def test_a_given_text_of_a_later_value_is_written_without_making_it() -> None:
    """A text given for one key order stands for a value made only when a writer reads it:
    the writer keeping that order never does; one sorting keys or reading back does, once."""
    group = {"name": "g", "rules": [{"record": "r", "expr": "up"}]}
    made: list[int] = []

    def make() -> dict[str, Any]:
        made.append(1)
        return group

    def document() -> dict[str, Any]:
        later = yamltext.given(yamltext.Later(make), yamltext.given_text(group))
        return {"groups": [later, later], "value": later}

    expected = {"groups": [group, group], "value": group}
    assert yamltext.dump(document()) == yamltext.dump(expected) and made == []
    assert yamltext.dump(document(), sort_keys=True) == yamltext.dump(expected, sort_keys=True)
    assert made == [1]  # made once, however often it is read
    assert yamltext.plain_data(document()) == expected and made == [1, 1]
    with pytest.raises(ValueError, match="made empty"):
        dict(yamltext.Later(dict))
