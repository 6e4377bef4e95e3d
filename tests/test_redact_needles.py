"""The needles that let the secret scanner skip a credential shape on a whole file must start
every text the shape's regular expression matches; otherwise a credential in a comment would
no longer be masked."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.core.redact import (
    KNOWN_SECRETS,
    MASK,
    SHAPE_NEEDLES,
    high_entropy_tokens,
    known_secret,
    mask_shapes,
    shape_matches,
)


def test_every_shape_has_needles() -> None:
    assert sorted(SHAPE_NEEDLES) == sorted(what for what, _ in KNOWN_SECRETS)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_match_holds_a_needle(data: st.DataObject) -> None:
    what, pattern = data.draw(st.sampled_from(KNOWN_SECRETS))
    text = data.draw(st.from_regex(pattern))
    matches = [m.group(0) for m in pattern.finditer(text)]
    assert matches
    found = [m.group(0) for shape, m in shape_matches(text) if shape == what]
    assert found == matches
    for match in matches:
        assert match.startswith(SHAPE_NEEDLES[what])


def test_matches_of_every_shape_in_a_file_in_order() -> None:
    text = (
        "a: AKIAABCDEFGHIJKLMNOP\n# xoxb-0123456789abc\n"
        "b: AKIAQRSTUVWXYZ234567 ghp_" + "a" * 36 + "\n"
    )
    expected = [
        (what, m.group(0)) for what, pattern in KNOWN_SECRETS for m in re.finditer(pattern, text)
    ]
    assert [(what, m.group(0)) for what, m in shape_matches(text)] == expected
    assert len(expected) == 4


def _masked_by_every_shape(text: str) -> str:
    """Masking as it was before the needles: every shape's expression run on every text."""
    if len(text) < 10:
        return text
    for _, pattern in KNOWN_SECRETS:
        text = pattern.sub(MASK, text)
    for token in high_entropy_tokens(text):
        text = text.replace(token, MASK)
    return text


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_masking_with_needles_masks_what_every_shape_masks(data: st.DataObject) -> None:
    _, pattern = data.draw(st.sampled_from(KNOWN_SECRETS))
    secrets = data.draw(st.lists(st.from_regex(pattern), max_size=2))
    text = data.draw(st.text(max_size=20)).join(["a message quoting ", *secrets, " here"])
    assert mask_shapes(text) == _masked_by_every_shape(text)


def _every_shape_scanned(text: str) -> list[tuple[str, str, int]]:
    """Matching as it was before the needles: every shape's expression scanned over the text."""
    return [
        (what, m.group(0), m.start())
        for what, pattern in KNOWN_SECRETS
        for m in pattern.finditer(text)
    ]


_PIECES = st.sampled_from(
    [needle for needles in SHAPE_NEEDLES.values() for needle in needles]
    + ["risk-", "a", "Z", "0", "_", "-", " ", "\n", "é", "k_", "gh", "x" * 40, "A" * 16, ".eyJ"]
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=30),
    secrets=st.lists(
        st.sampled_from(KNOWN_SECRETS).flatmap(lambda s: st.from_regex(s[1])), max_size=3
    ),
)
def test_matches_found_from_the_needles_are_those_of_a_full_scan(
    pieces: list[str], secrets: list[str]
) -> None:
    """Matches start only where a needle does, overlapping needles and words that end in one
    (``risk-``) included: the same matches, in the same order, as scanning the whole text."""
    text = "".join(pieces[: len(pieces) // 2] + secrets + pieces[len(pieces) // 2 :])
    found = [(what, m.group(0), m.start()) for what, m in shape_matches(text)]
    assert found == _every_shape_scanned(text)


def test_every_needle_starts_the_matches_of_its_shape() -> None:
    text = "risk-" + "a" * 40 + " sk-" + "b" * 40 + " ghp_" + "c" * 36 + " sk_live_" + "d" * 20
    found = [(what, m.group(0)) for what, m in shape_matches(text)]
    assert found == [(w, g) for w, g, _ in _every_shape_scanned(text)]
    assert [what for what, _ in found] == [
        "a GitHub token",
        "a Stripe key",
        "an OpenAI-style API key",
    ]
    for what, match in found:
        assert match.startswith(SHAPE_NEEDLES[what])


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=12),
    secrets=st.lists(
        st.sampled_from(KNOWN_SECRETS).flatmap(lambda s: st.from_regex(s[1])), max_size=2
    ),
)
def test_known_secret_is_the_first_shape_found(pieces: list[str], secrets: list[str]) -> None:
    """``known_secret`` skips the shapes' expressions when no needle occurs in the text."""
    text = "".join(pieces[:3] + secrets + pieces[3:])
    first = next((what for what, pattern in KNOWN_SECRETS if pattern.search(text)), None)
    assert known_secret(text) == first


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(_PIECES, max_size=30),
    secrets=st.lists(
        st.sampled_from(KNOWN_SECRETS).flatmap(lambda s: st.from_regex(s[1])), max_size=2
    ),
    padding=st.sampled_from([0, 5, 9, 31, 480, 511, 512, 513, 700]),
)
def test_masking_remembered_masks_what_every_shape_masks(
    pieces: list[str], secrets: list[str], padding: int
) -> None:
    """Texts with no needle, needles alone, credentials and random tokens, short and long on
    both sides of the remembered length: masked the first time and again (remembered) as
    every shape's expression masks them."""
    middle = "".join(pieces[: len(pieces) // 2] + secrets + pieces[len(pieces) // 2 :])
    text = (middle + " " * padding)[: max(padding, 1)] if padding < 32 else middle.ljust(padding)
    expected = _masked_by_every_shape(text)
    assert mask_shapes(text) == expected
    assert mask_shapes(text) == expected
