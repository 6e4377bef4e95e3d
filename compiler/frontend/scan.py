"""Whole-spec scans that run before the schema: CI expressions and inline secrets.

These look at every key and value in the spec, whatever the schema says about the place,
because their danger does not depend on the field: a ``${{`` reaches a workflow wherever it is
written, and a private key pasted into a description, or a token used as a label key, is leaked
all the same. A secret is never echoed: what the scanner flags (the key or value, and every
source line it spans) is handed to ``Diagnostics.redact``, which masks it in every diagnostic of
the compile and keeps renderers from quoting those lines, whatever pass reports on them.

What counts as a secret: a key or value of a known credential shape or a long random token
(``compiler.core.redact``); the value of a field named like a secret (``password``,
``secretKey``, ...) that is not a secret reference, numbers included; and, in any URI written
anywhere, a password in the userinfo or a non-empty query or fragment parameter named like a
credential (``SECRET_PARAMS``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics, Location, SpecPath
from mlplane.compiler.core.redact import (
    KNOWN_SECRETS,
    MIN_MASKED_LENGTH,
    high_entropy_tokens,
    known_secret,
    shape_matches,
)
from mlplane.compiler.frontend.document import Document
from mlplane.schema import formats

SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "secret", "token", "apikey", "accesskey", "secretkey",
        "privatekey", "clientsecret", "credentials", "credential", "authtoken", "accesstoken",
        "secretaccesskey", "connectionstring", "bearer",
    }
)  # fmt: skip
"""Field names (lower case, without ``-`` and ``_``) whose value must be a secret reference."""

SECRET_PARAMS = SECRET_KEYS | frozenset(
    {
        # generic
        "pass", "key", "auth", "authorization", "jwt", "apitoken", "privatetoken",
        "refreshtoken", "idtoken", "sessiontoken", "securitytoken", "clientkey",
        # signed URLs: S3 and GCS presigned URLs, Azure SAS tokens
        "sig", "signature", "xamzsignature", "xamzcredential", "xamzsecuritytoken",
        "xgoogsignature", "xgoogcredential", "sas", "sastoken", "accountkey",
        "sharedaccesskey",
    }
)  # fmt: skip
"""URI query and fragment parameters (compared as ``SECRET_KEYS``) that carry a credential: any
non-empty value of one is refused, as is any parameter whose name ends in one of
``SECRET_SUFFIXES`` (``dbPassword``, ``x-auth-token``). ``key`` is Google's API-key parameter,
``sig`` an Azure SAS signature; parameters that only name a credential (``X-Amz-Algorithm``,
``X-Amz-Date``, ``sv``, ``se``) are not secrets."""

SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "secretkey", "privatekey")

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_REFERENCE_HINT = (
    "declare it in security.secrets as a reference (vault://..., aws-sm://..., env:NAME) "
    "and refer to it by name; rotate the exposed value"
)


def scan_document(document: Document, diagnostics: Diagnostics) -> frozenset[SpecPath]:
    """Report CI expressions and inline secrets; return the paths reported (the schema pass
    skips them, and everything under them, so that one problem gives one diagnostic)."""
    flagged: set[SpecPath] = set()
    secrets, expressions = _found(document)
    _redact(document, diagnostics, secrets)
    for path, on_key in expressions:
        diagnostics.error(
            codes.INVALID_TEXT,
            "'${{' is not allowed anywhere in a spec: it would be evaluated by GitHub Actions",
            document.location(path) if on_key else document.value_location(path),
            path,
            "remove the expression; generated workflows pass values through env:",
        )
        flagged.add(path)
    for path, on_key, what, _ in secrets:
        if path in flagged:
            continue  # one diagnostic per place
        diagnostics.error(
            codes.INLINE_SECRET,
            f"{what}; secrets must be references, and the {'key' if on_key else 'value'} is "
            "not shown",
            document.location(path) if on_key else document.value_location(path),
            path,
            _REFERENCE_HINT,
        )
        flagged.add(path)
    return frozenset(flagged)


Secrets = list[tuple[SpecPath, bool, str, list[str]]]
"""Path, on the key (else the value), what it looks like, the texts to mask."""


def _found(document: Document) -> tuple[Secrets, list[tuple[SpecPath, bool]]]:
    """The secrets and the CI expressions (path, on the key) of every mapping entry and list
    item, depth first (iteratively: a spec may nest deeply). An entry's path is made only for
    what is reported or walked into: the scan visits every entry of the spec."""
    secrets: Secrets = []
    expressions: list[tuple[SpecPath, bool]] = []
    raw, verdict = document.raw, _secret_in_text_once
    containers = (dict, list)
    stack: list[tuple[SpecPath, Any]] = [((), document.data)]
    while stack:
        path, node = stack.pop()
        entries: Iterator[tuple[Any, Any]]
        if isinstance(node, dict):
            entries, named = iter(node.items()), True
        elif isinstance(node, list):
            entries, named = enumerate(node), False
        else:
            continue
        for step, value in entries:
            key = str(step) if named else ""
            in_key = verdict(key) if key else None
            if isinstance(value, str):  # most values: their verdict is remembered
                in_value = _secret_text(key, value) if value else None
                expression = "${{" in key or "${{" in value
            else:
                in_value = None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    in_value = _secret_number(key, value, raw, (*path, step))
                expression = "${{" in key
            if in_key is not None:  # one diagnostic, at the key; the value is masked all the same
                masked = [key, *in_key[1], *(in_value[1] if in_value else ())]
                secrets.append(((*path, step), True, f"this key looks like {in_key[0]}", masked))
            elif in_value is not None:
                what = f"this value looks like {in_value[0]}"
                secrets.append(((*path, step), False, what, in_value[1]))
            if expression:
                expressions.append(((*path, step), "${{" in key))
            if isinstance(value, containers):
                stack.append(((*path, step), value))
    return secrets, expressions


def _secret_text(key: str, value: str) -> tuple[str, list[str]] | None:
    """What the text ``value`` of ``key`` holds when it is a secret, and the texts to mask."""
    found = _secret_in_text_once(value)
    if found is not None:
        return found[0], [value, *found[1]]
    if _normalised(key) in SECRET_KEYS and formats.secret_ref_problem(value) is not None:
        return f"a literal {key}", [value]
    return None


def _secret_number(
    key: str, value: float, raw: Mapping[SpecPath, str], path: SpecPath
) -> tuple[str, list[str]] | None:
    """What the number ``value`` of ``key`` at ``path`` holds when it is a secret (a literal of a
    secret field), and the texts to mask (``raw``: the document's texts of plain scalars that
    are not strings)."""
    if _normalised(key) not in SECRET_KEYS:
        return None
    text = raw.get(path)
    return f"a literal {key}", [str(value), *([text] if text else [])]


@lru_cache(maxsize=1 << 16)
def _secret_in_text_once(text: str) -> tuple[str, tuple[str, ...]] | None:
    """What ``text`` holds when it contains a credential whatever its field, and the pieces to
    mask (the whole text is masked too when it is a value); remembered, because names and
    values repeat across a large spec."""
    found = _secret_in_text_uncached(text)
    return None if found is None else (found[0], tuple(found[1]))


def _secret_in_text_uncached(text: str) -> tuple[str, list[str]] | None:
    what = known_secret(text)
    if what is not None:
        return what, [m.group(0) for _, pattern in KNOWN_SECRETS for m in pattern.finditer(text)]
    if "://" in text:
        found = _uri_credentials(text)
        if found is not None:
            return found
    tokens = high_entropy_tokens(text)
    if tokens:
        return "a generated credential (a long random token)", tokens
    return None


def _uri_credentials(text: str) -> tuple[str, list[str]] | None:
    """What the URIs of ``text`` carry when they carry credentials (a userinfo password, the
    value of a credential-named query or fragment parameter), and the pieces to mask."""
    pieces: list[str] = []
    what = ""
    for match in _URI.finditer(text):
        uri = match.group(0)
        if "@" not in uri and "?" not in uri and "#" not in uri:
            continue  # no userinfo, query or fragment: nothing to carry a credential
        try:
            parts = urlsplit(uri)
            password = parts.password
        except ValueError:
            continue  # not a URI after all; the field's own check reports a malformed one
        if password:
            what = what or "credentials inside a URI"
            pieces += [password, unquote_plus(password), parts.netloc.rpartition("@")[0]]
        for query in (parts.query, parts.fragment):
            for pair in re.split(r"[&;]", query):
                name, equals, raw = pair.partition("=")
                if equals and raw and _secret_param(unquote_plus(name)):
                    what = what or "a credential in a URI's query string"
                    pieces += [raw, unquote_plus(raw)]
    return (what, pieces) if pieces else None


def _secret_param(name: str) -> bool:
    normalised = _normalised(name)
    return normalised in SECRET_PARAMS or normalised.endswith(SECRET_SUFFIXES)


@lru_cache(maxsize=1 << 14)
def _normalised(name: str) -> str:
    return re.sub(r"[-_. ]", "", name.lower())


def _redact(
    document: Document,
    diagnostics: Diagnostics,
    secrets: list[tuple[SpecPath, bool, str, list[str]]],
) -> None:
    """Mask every flagged text and hide every line a flagged key or value spans: from where it
    starts to the line before the next key or value of its file (a block scalar's lines, a
    multi-line quoted string's continuation lines)."""
    values: list[str] = []
    lines: list[tuple[str, int, int]] = []
    for name, text in document.files.items():  # credentials of a known shape in comments too
        line, counted, shape = 1, 0, ""
        for what, match in shape_matches(text):
            if what != shape:  # each shape's matches are counted from the top of the file
                line, counted, shape = 1, 0, what
            line, counted = line + text.count("\n", counted, match.start()), match.start()
            lines.append((name, line, line + match.group(0).count("\n")))
            values.append(match.group(0))
    if secrets:
        starts: dict[str, list[tuple[int, int]]] = {}
        for node in (*document.keys.values(), *document.values.values()):
            starts.setdefault(node.file, []).append((node.line, node.column))
        for positions in starts.values():
            positions.sort()
        for path, on_key, _, texts in secrets:
            values += texts
            location = document.location(path) if on_key else document.value_location(path)
            if location is not None:
                last = _last_line(location, starts, document.files.get(location.file, ""))
                lines.append((location.file, location.line, last))
        lines += _lines_quoting(document.files, values)
    if values or lines:
        diagnostics.redact(values, lines)


MAX_SEARCHED_VALUES = 256
"""How many distinct flagged values are looked for elsewhere in the files (a spec flagged that
often is refused anyway; the cost stays bounded on a hostile one)."""


def _lines_quoting(files: dict[str, str], values: list[str]) -> list[tuple[str, int, int]]:
    """The lines that repeat a flagged value somewhere else (``framework: <the password>``):
    a diagnostic there must not quote its line either."""
    wanted = sorted({value for value in values if len(value) >= MIN_MASKED_LENGTH})
    found: list[tuple[str, int, int]] = []
    for name, text in files.items():
        for value in wanted[:MAX_SEARCHED_VALUES]:
            line, counted = 1, 0
            at = text.find(value)
            while at != -1:
                line, counted = line + text.count("\n", counted, at), at
                found.append((name, line, line + value.count("\n")))
                at = text.find(value, at + len(value))
    return found


def _last_line(location: Location, starts: dict[str, list[tuple[int, int]]], text: str) -> int:
    positions = starts.get(location.file, [])
    after = bisect.bisect_right(positions, (location.line, location.column))
    if after == len(positions):  # the last node of its file: to the end
        return max(location.line, text.count("\n") + 1)
    return max(location.line, positions[after][0] - 1)
