"""Long changed values in the plan: cut around the part that changed, in text and markdown."""

from __future__ import annotations

from mlplane.compiler.plan.model import PropertyChange
from mlplane.compiler.plan.text import CONTEXT, MAX_VALUE, changed_texts, property_text

IMAGE = "ghcr.io/acme/radiology/chest-xray-triage-serving-image:{}@sha256:" + "ab" * 32


def test_a_long_string_change_shows_the_differing_part_on_both_sides() -> None:
    before, after = changed_texts(IMAGE.format("1.4.2"), IMAGE.format("1.5.0"))
    assert "1.4.2" in before and "1.5.0" in after
    assert before.replace("1.4.2", "") == after.replace("1.5.0", "")  # the same context
    assert before.startswith("…") and before.endswith("…")
    assert len(before) <= MAX_VALUE and len(after) <= MAX_VALUE


def test_a_change_at_the_end_or_the_start_keeps_it() -> None:
    long = "x" * 200
    assert changed_texts(long + "a", long + "b") == (
        "…" + "x" * CONTEXT + 'a"',
        "…" + "x" * CONTEXT + 'b"',
    )
    before, after = changed_texts("a" + long, "b" + long)
    assert before.startswith('"a') and after.startswith('"b')


def test_a_long_difference_is_cut_but_both_sides_still_differ() -> None:
    before, after = changed_texts("p" * 50 + "A" * 300, "p" * 50 + "B" * 300)
    assert before != after and "A" in before and "B" in after
    assert len(before) <= MAX_VALUE + 2 * CONTEXT


def test_short_values_and_secrets_are_shown_as_before() -> None:
    assert changed_texts("a", "b") == ('"a"', '"b"')
    assert changed_texts({"$secret": "k"}, {"$secret": "j"}) == ("(secret k)", "(secret j)")


def test_text_and_markdown_lines_show_the_change() -> None:
    from mlplane.compiler.plan import markdown

    change = PropertyChange("spec.image", "changed", IMAGE.format("1.4.2"), IMAGE.format("1.5.0"))
    line = property_text(change)
    assert line.startswith("~ spec.image: …") and "1.4.2" in line and "1.5.0" in line
    assert markdown.property_text is property_text  # the markdown plan prints the same line
