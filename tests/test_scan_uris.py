"""The secret scan looks for credentials in a URI only when it has a userinfo, a query or a
fragment (``scan._uri_credentials``); without ``@``, ``?`` and ``#`` there is none of them."""

from __future__ import annotations

from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from mlplane.compiler.frontend.scan import _URI, _uri_credentials

_PARTS = st.sampled_from(
    ["s3://", "https://", "postgres://", "u", ":", "pw", "@", "h", "/", "?", "#", "&", ";", "=",
     "token", "sig", "password", "[", "]", "%40", "x" * 8, "é", "\uff03", "\ufe6b", ".", "-"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_PARTS, min_size=1, max_size=16))
def test_a_uri_without_at_question_or_hash_has_no_userinfo_query_or_fragment(
    parts: list[str],
) -> None:
    for match in _URI.finditer("".join(parts)):
        uri = match.group(0)
        if "@" in uri or "?" in uri or "#" in uri:
            continue
        try:
            split = urlsplit(uri)
            password = split.password
        except ValueError:
            continue
        assert (password, split.query, split.fragment) == (None, "", "")


def test_credentials_in_uris_are_still_found() -> None:
    found = _uri_credentials("postgres://u:pw1234@h/db and s3://b/k?X-Amz-Signature=abc#x")
    assert found is not None
    what, pieces = found
    assert what == "credentials inside a URI"
    assert "pw1234" in pieces and "abc" in pieces
    assert _uri_credentials("s3://bucket/key and https://h.example/path") is None
