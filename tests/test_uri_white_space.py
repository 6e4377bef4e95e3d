"""A URI with white space is refused (``formats.uri_problem``); the test is one search of a
text pattern's ``\\s``, which must be exactly ``str.isspace`` of a character."""

from __future__ import annotations

import sys

from mlplane.schema import formats


def test_the_white_space_pattern_is_str_isspace_for_every_character() -> None:
    differ = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if bool(formats._WHITE_SPACE.search(chr(code))) != chr(code).isspace()
    ]
    assert differ == []


def test_a_uri_with_any_white_space_is_refused() -> None:
    for space in (" ", "\t", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000"):
        assert formats.uri_problem(f"s3://bucket/a{space}b", "data") == (
            "URI must not contain white space"
        )
    assert formats.uri_problem("s3://bucket/a\u200bb", "data") is None  # not white space
