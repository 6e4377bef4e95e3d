"""Which input changes force Pulumi to *replace* a resource (delete and re-create it).

A plan that says "update" where Pulumi will replace is worse than no plan: replacing a
Deployment restarts every pod at once, replacing a PersistentVolumeClaim loses its volume. Each
target knows its provider's "force new" properties and hands them over as a
``plugins.ReplaceTable`` (``targets/kubernetes/replace.py``, ``targets/aws/replace.py``); this
module looks a type token up in every installed target's table and compares the fields.
``docs/plan.md`` prints the tables (:func:`replace_table_markdown`).

Paths use the graph's wire-form keys; ``[*]`` matches every element of a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplane.compiler.core import plugins

_ABSENT = object()


def replace_fields(token: str) -> tuple[str, ...]:
    """Every field of ``token`` whose change forces a replacement (by the installed targets)."""
    for target in plugins.targets().values():
        found = target.replace_table.fields(token)
        if found:
            return found
    return ()


def forced_by(token: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """The replace fields of ``token`` whose values differ between ``old`` and ``new`` inputs."""
    return tuple(f for f in replace_fields(token) if _values(old, f) != _values(new, f))


def split_field(text: str) -> tuple[str, ...]:
    """``spec.containers[*].image`` -> ``("spec", "containers", "*", "image")``."""
    return tuple(text.replace("[*]", ".*").split("."))


def _values(inputs: Mapping[str, Any], text: str) -> list[Any]:
    """Every value at ``text`` (``[*]`` expands over lists); absent values are kept as a marker
    so that adding or removing a field counts as a change of it."""
    found: list[Any] = [inputs]
    for part in split_field(text):
        step: list[Any] = []
        for value in found:
            if part == "*":
                step.extend(value if isinstance(value, list) else [_ABSENT])
            else:
                step.append(value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT)
        found = step
    return found


def covers(field_text: str, path: tuple[str | int, ...]) -> bool:
    """Whether a change at property ``path`` lies at, below or above the replace field."""
    pattern = split_field(field_text)
    size = min(len(pattern), len(path))
    for want, got in zip(pattern[:size], path[:size], strict=True):
        if want == "*":
            if not isinstance(got, int):
                return False
        elif want != got:
            return False
    return True


def replace_table_markdown() -> str:
    """The table printed in ``docs/plan.md`` (a test keeps the two equal)."""
    lines = ["| resource type | fields whose change forces a replacement |", "|---|---|"]
    tables = [target.replace_table for target in plugins.ordered_targets()]
    for table in tables:
        if table.common:
            common = ", ".join(f"`{f}`" for f in table.common)
            lines.append(f"| every `{table.prefix}*` type | {common} |")
    rows = {token: fields for table in tables for token, fields in table.rows.items()}
    for token, fields in sorted(rows.items()):
        shown = _compact(fields)
        lines.append(f"| `{token}` | {shown} |")
    return "\n".join(lines) + "\n"


def _compact(fields: tuple[str, ...]) -> str:
    """Long rows (Pod, PersistentVolume) grouped by prefix, so the table stays readable."""
    groups: dict[str, list[str]] = {}
    for field in fields:
        head, _, tail = field.rpartition(".")
        groups.setdefault(head, []).append(tail)
    parts = []
    for head, tails in groups.items():
        if len(tails) > 3 and head:  # top-level inputs stay one by one
            parts.append(f"`{head}.{{{', '.join(tails)}}}`")
        else:
            parts.extend(f"`{head}.{tail}`" if head else f"`{tail}`" for tail in tails)
    return ", ".join(parts)
