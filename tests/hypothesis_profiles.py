"""Hypothesis profiles: Hypothesis's ``default`` (what ``make test`` runs) and ``fast`` (what
``make test-fast`` selects with ``--hypothesis-profile=fast``).

A property test that names its own example count writes ``max_examples=examples(N)``: ``N``
under ``default``, at most ``FAST_EXAMPLES`` under ``fast``. A test that names no count gets the
profile's own ``max_examples``. The fast tier runs every property test, with fewer examples;
``make test`` keeps every count as written.
"""

from __future__ import annotations

from hypothesis import settings

FAST = "fast"
FAST_EXAMPLES = 20

settings.register_profile(FAST, settings.get_profile("default"), max_examples=FAST_EXAMPLES)


def examples(full: int) -> int:
    """The example count of a property test under the profile in force: ``full`` unless the
    fast profile is loaded, then at most ``FAST_EXAMPLES``."""
    if settings.get_current_profile_name() == FAST:
        return min(full, FAST_EXAMPLES)
    return full
