"""Remembered scalar checks answer exactly as the checks they wrap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from mlplane.schema import types
from mlplane.schema.types import check_duration, check_name, remembered

VALUES = st.one_of(
    st.sampled_from(["30s", "5m", "1h30m", "0s", "risk-ml", "Risk", "class", "x" * 41, ""]),
    st.text(max_size=12),
)


def _answer(check: types.Check, value: str) -> tuple[str, object]:
    try:
        return "ok", check(value)
    except PydanticCustomError as error:
        return error.type, error.message()


@given(st.lists(VALUES, max_size=30))
def test_remembered_check_answers_as_the_check(values: list[str]) -> None:
    for check in (check_duration, check_name):
        memo = remembered(check)
        for value in values + values:  # the second pass is answered from the memo
            assert _answer(memo, value) == _answer(check, value)


def test_a_refused_value_is_refused_every_time() -> None:
    memo = remembered(check_duration)
    for _ in range(2):
        with pytest.raises(PydanticCustomError, match="invalid duration"):
            memo("5 minutes")


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def check(value: str) -> str:
        calls.append(value)
        return value

    monkeypatch.setattr(types, "MEMO_LIMIT", 2)
    memo = remembered(check)
    for value in ("a", "b", "c", "a"):
        assert memo(value) == value
    assert calls == ["a", "b", "c", "a"]  # full at "c": "a" was forgotten
    assert memo("c") == "c"
    assert calls == ["a", "b", "c", "a"]


def test_a_long_value_is_checked_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def check(value: str) -> str:
        calls.append(value)
        return value

    monkeypatch.setattr(types, "MEMO_CHARS", 3)
    memo = remembered(check)
    for value in ("abc", "abcd", "abc", "abcd"):
        assert memo(value) == value
    assert calls == ["abc", "abcd", "abcd"]
