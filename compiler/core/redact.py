"""Recognising credentials, and keeping them out of everything mlplane prints.

Two parts. The *detectors* (``known_secret``, ``high_entropy_tokens``) say whether a piece of
text looks like a credential by its shape alone; the secret scanner
(``compiler.frontend.scan``) applies them, with its knowledge of field names and URIs, to every
key and value of a spec. ``Redactions`` then remembers what the scanner flagged — the values
and the source lines they were written on — so that ``Diagnostics`` can mask those values in
every message, hint, spec path and related note, whatever pass reported them, and so that no
renderer quotes a flagged line. Values of a known shape (cloud keys, tokens, ...) and long
random tokens are masked in every diagnostic even when no scan ran, since a spec that fails to
load (a duplicate key, say) still has its keys quoted in messages.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

MASK = "***"
"""What a masked value is shown as (as in GitHub Actions' own log masking)."""

MIN_MASKED_LENGTH = 4
"""Flagged values shorter than this are not masked inside messages (masking ``1`` would
rewrite every number of every message); their lines are still never quoted."""

KNOWN_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/[^\s\"']*")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a Stripe key", re.compile(r"\b[sr]k_(live|test)_[0-9A-Za-z]{16,}")),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    ),
    ("an OpenAI-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{32,}")),
)
SHAPE_NEEDLES: dict[str, tuple[str, ...]] = {
    "an AWS access key id": ("AKIA", "ASIA", "AGPA", "AIDA", "AROA"),
    "a private key": ("-----BEGIN ",),
    "a GitHub token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "a Slack token": ("xox",),
    "a Slack webhook URL": ("hooks.slack.com/services/T",),
    "a Google API key": ("AIza",),
    "a Stripe key": ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    "a JSON Web Token": ("eyJ",),
    "an OpenAI-style API key": ("sk-",),
}
"""For each shape of :data:`KNOWN_SECRETS`, texts of which every match starts with one: a large
text (a whole spec file) holding none of them cannot match, and a substring test is far cheaper
than the regular expression's scan; in a text holding some, a match can only start where one
does."""


def shape_matches(text: str) -> Iterable[tuple[str, re.Match[str]]]:
    """(what, match) of every credential of a known shape in ``text``, shape by shape; the
    shapes none of whose needles occur in ``text`` are not scanned for, the others only where
    a needle starts (``pattern.finditer``'s matches: a spec file of 1.9 MB with ``risk-`` in it
    was scanned in full for ``\bsk-``, 40 ms)."""
    for what, pattern in KNOWN_SECRETS:
        needles = SHAPE_NEEDLES[what]
        if any(needle in text for needle in needles):
            for match in _starting_at(pattern, text, needles):
                yield what, match


def _starting_at(
    pattern: re.Pattern[str], text: str, needles: tuple[str, ...]
) -> Iterable[re.Match[str]]:
    """``pattern.finditer(text)`` for a pattern whose every match starts with one of
    ``needles`` (and is not empty): tried only where a needle starts. ``pattern.match`` at a
    position sees the text before it, so ``\b`` holds as in a scan. Each needle's next
    occurrence is searched for again only once passed: linear in the text."""
    nexts = [text.find(needle) for needle in needles]
    at = 0
    while True:
        for index, where in enumerate(nexts):
            if 0 <= where < at:
                nexts[index] = text.find(needles[index], at)
        start = min((where for where in nexts if where >= 0), default=-1)
        if start < 0:
            return
        match = pattern.match(text, start)
        if match is None:
            at = start + 1
        else:
            yield match
            at = max(match.end(), start + 1)


_TOKEN_LENGTH = 32
_TOKEN = re.compile(rf"[A-Za-z0-9+/=_-]{{{_TOKEN_LENGTH},}}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"))
_PATH_LIKE = re.compile(r"[+=]")


_ANY_NEEDLE = re.compile(
    "|".join(re.escape(needle) for needles in SHAPE_NEEDLES.values() for needle in needles)
)
"""Finds a needle of any shape: a text holding none matches no shape (one search, not nine)."""


def known_secret(text: str) -> str | None:
    """What ``text`` holds when it contains a credential of a known shape (``"a GitHub
    token"``), else None."""
    if _ANY_NEEDLE.search(text) is None:
        return None
    for what, pattern in KNOWN_SECRETS:
        if pattern.search(text):
            return what
    return None


def high_entropy_tokens(text: str) -> list[str]:
    """The long tokens of ``text`` with the character spread of random key material (digests,
    paths and URL segments excepted)."""
    found: list[str] = []
    if len(text) < _TOKEN_LENGTH:
        return found  # no token fits
    for token in _TOKEN.findall(_DIGEST.sub(" ", text)):
        if "/" in token and not _PATH_LIKE.search(token):
            continue  # paths and URL segments
        classes = sum(bool(pattern.search(token)) for pattern in _CLASSES)
        if classes == 3 and _entropy(token) >= 4.5:
            found.append(token)
    return found


def _entropy(token: str) -> float:
    counts = Counter(token)
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


_MEMO_CHARS = 512
"""Texts up to this long are masked once per process (:func:`_remembered`): a diagnostic's
message, path and hint are masked again each time it is added to another collection, and
hints repeat across a large spec's warnings."""


def mask_shapes(text: str) -> str:
    """``text`` with every credential of a known shape and every random-looking token masked."""
    if len(text) < 10:
        return text  # shorter than any shape above
    return _remembered(text) if len(text) <= _MEMO_CHARS else _masked_shapes(text)


def _masked_shapes(text: str) -> str:
    if _ANY_NEEDLE.search(text) is not None:  # else no shape can match (one search, not nine)
        for what, pattern in KNOWN_SECRETS:
            if any(needle in text for needle in SHAPE_NEEDLES[what]):  # else it cannot match
                text = pattern.sub(MASK, text)
    for token in high_entropy_tokens(text):
        text = text.replace(token, MASK)
    return text


_remembered = lru_cache(maxsize=1 << 13)(_masked_shapes)
""":func:`_masked_shapes`, remembered: it depends on the text alone. At most 8,192 texts of
at most 512 characters are kept (16 MiB however hostile the spec)."""


def _spellings(value: str) -> set[str]:
    """``value`` as messages may quote it: as is, or escaped by ``repr``, ``ascii`` or JSON."""
    return {
        value,
        repr(value)[1:-1],
        ascii(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


class Redactions:
    """The values and source lines the secret scanner flagged in one compile."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, list[str]] = {}
        self._lines: set[tuple[str, int]] = set()

    def __bool__(self) -> bool:
        return bool(self._by_prefix or self._lines)

    def add_values(self, values: Iterable[str]) -> None:
        for value in values:
            if len(value) < MIN_MASKED_LENGTH:
                continue
            for spelling in _spellings(value):
                known = self._by_prefix.setdefault(spelling[:MIN_MASKED_LENGTH], [])
                if spelling not in known:
                    known.append(spelling)
                    known.sort(key=len, reverse=True)  # the longest match wins

    def hide_lines(self, file: str, first: int, last: int) -> None:
        """Never quote lines ``first`` to ``last`` (1-based, inclusive) of ``file``."""
        self._lines.update((file, line) for line in range(first, max(first, last) + 1))

    def hides(self, file: str, line: int) -> bool:
        return (file, line) in self._lines

    def mask(self, text: str) -> str:
        """``text`` with every flagged value, and every credential-shaped token, masked."""
        if self._by_prefix:
            text = self._mask_values(text)
        return mask_shapes(text)

    def _mask_values(self, text: str) -> str:
        # A prefix index rather than one big regex alternation: the cost per text stays linear
        # in its length however many values a hostile spec makes the scanner flag.
        index, size = self._by_prefix, MIN_MASKED_LENGTH
        out: list[str] = []
        start = position = 0
        while position <= len(text) - size:
            end = 0
            for value in index.get(text[position : position + size], ()):
                if text.startswith(value, position) and _whole(text, position, len(value)):
                    end = position + len(value)
                    break
            if end:
                out += (text[start:position], MASK)
                start = position = end
            else:
                position += 1
        out.append(text[start:])
        return "".join(out)


_WORD = re.compile(r"[A-Za-z0-9_]")


def _whole(text: str, position: int, size: int) -> bool:
    """A long value matches anywhere; a short one (``hunter2``) only as a whole word, so that it
    does not eat into legitimate text around it."""
    if size >= 8:
        return True
    before = text[position - 1 : position]
    after = text[position + size : position + size + 1]
    return not (before and _WORD.match(before)) and not (after and _WORD.match(after))
