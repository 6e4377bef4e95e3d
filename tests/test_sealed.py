"""The cache files both caches write (``compiler/core/sealed.py``): a body comes back only
under its own key, format and secret, and any other file is refused without an error."""

from __future__ import annotations

import json

import pytest

from mlplane.compiler.core import sealed

SECRET = bytes(range(32))


def test_a_sealed_body_comes_back_as_written() -> None:
    data = sealed.seal(SECRET, "k1", 3, b"body\nwith lines")
    body = sealed.unseal(data, "k1", 3, SECRET)
    assert body is not None and bytes(body) == b"body\nwith lines"


@pytest.mark.parametrize(
    "change",
    ["key", "format", "secret", "body", "hmac", "no newline", "not json", "deep", "list header"],
)
def test_any_other_file_is_refused(change: str) -> None:
    data, key, version, secret = sealed.seal(SECRET, "k1", 3, b"body"), "k1", 3, SECRET
    if change == "key":
        key = "k2"
    elif change == "format":
        version = 4
    elif change == "secret":
        secret = bytes(32)
    elif change == "body":
        data += b"!"
    elif change == "hmac":
        header = json.loads(data.split(b"\n")[0])
        header["hmac"] = "0" * 64
        data = json.dumps(header).encode() + b"\nbody"
    elif change == "no newline":
        data = data.replace(b"\n", b" ")
    elif change == "not json":
        data = b"\xff\xfe{\nbody"
    elif change == "deep":
        data = b"[" * 200_000 + b"\nbody"
    elif change == "list header":
        data = b'["k1", 3]\nbody'
    assert sealed.unseal(data, key, version, secret) is None
