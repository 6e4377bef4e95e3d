"""Whole-spec scans that run before the schema: CI expressions and inline secrets.

These look at every key and string in the spec, whatever the schema says about the place, because
their danger does not depend on the field: a ``${{`` reaches a workflow wherever it is written, and
a private key pasted into a description is leaked all the same. A secret's value is never echoed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from mlplane.compiler.core import codes
from mlplane.compiler.core.diagnostics import Diagnostics, SpecPath
from mlplane.compiler.frontend.document import Document
from mlplane.schema import formats

SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "secret", "token", "apikey", "accesskey", "secretkey",
        "privatekey", "clientsecret", "credentials", "credential", "authtoken", "accesstoken",
        "secretaccesskey", "connectionstring", "bearer",
    }
)  # fmt: skip

_KNOWN_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a Stripe key", re.compile(r"\b[sr]k_(live|test)_[0-9A-Za-z]{16,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
    ("an OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{32,}")),
)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_REFERENCE_HINT = (
    "declare it in security.secrets as a reference (vault://..., aws-sm://..., env:NAME) "
    "and refer to it by name; rotate the exposed value"
)


def scan_document(document: Document, diagnostics: Diagnostics) -> frozenset[SpecPath]:
    """Report CI expressions and inline secrets; return the paths reported (the schema pass
    skips them so that one problem gives one diagnostic)."""
    flagged: set[SpecPath] = set()
    for path, key, value in _walk(document.data):
        if "${{" in key or (isinstance(value, str) and "${{" in value):
            diagnostics.error(
                codes.INVALID_TEXT,
                "'${{' is not allowed anywhere in a spec: it would be evaluated by GitHub Actions",
                document.location(path) if "${{" in key else document.value_location(path),
                path,
                "remove the expression; generated workflows pass values through env:",
            )
            flagged.add(path)
            continue
        what = _secret_kind(key, value)
        if what is not None:
            diagnostics.error(
                codes.INLINE_SECRET,
                f"this value looks like {what}; secrets must be references, and the value is not shown",
                document.value_location(path),
                path,
                _REFERENCE_HINT,
            )
            flagged.add(path)
    return frozenset(flagged)


def _walk(data: Any) -> Iterator[tuple[SpecPath, str, Any]]:
    """(path, key, value) for every mapping entry and list item, iteratively."""
    stack: list[tuple[SpecPath, Any]] = [((), data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                here = (*path, key)
                yield here, key, value
                if isinstance(value, dict | list):
                    stack.append((here, value))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                here = (*path, index)
                yield here, "", value
                if isinstance(value, dict | list):
                    stack.append((here, value))


def _secret_kind(key: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    for what, pattern in _KNOWN_SECRETS:
        if pattern.search(value):
            return what
    normalised = key.lower().replace("-", "").replace("_", "")
    if normalised in SECRET_KEYS and formats.secret_ref_problem(value) is not None:
        return f"a literal {key}"
    if _high_entropy(value):
        return "a generated credential (a long random token)"
    return None


def _high_entropy(value: str) -> bool:
    """A long token with the character spread of random key material (not a digest)."""
    cleaned = _DIGEST.sub("", value)
    for token in _TOKEN.findall(cleaned):
        if "/" in token and not re.search(r"[+=]", token):
            continue  # paths and URL segments
        classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes == 3 and _entropy(token) >= 4.5:
            return True
    return False


def _entropy(token: str) -> float:
    counts = Counter(token)
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in counts.values())
