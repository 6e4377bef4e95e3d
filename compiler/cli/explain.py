"""``mlplane explain``: the effective spec of one environment, each value with its origin.

The output is YAML written by the project's one YAML writer (``compiler/core/yamltext.py``: a
value is plain only when YAML 1.1 and 1.2 read it back alike, else quoted, ASCII only) so it can
be read, diffed and even fed back to ``mlplane validate``. With origins, every leaf gets a
``# file:line`` comment, marked ``(override)`` when an environment overlay set it; the comments
line up in one column.
"""

from __future__ import annotations

from typing import Any

from mlplane.compiler.core import canonical, yamltext
from mlplane.compiler.core.diagnostics import Location, SpecPath
from mlplane.compiler.frontend.document import Document
from mlplane.compiler.frontend.system_model import is_production
from mlplane.compiler.render.common import make_safe
from mlplane.schema.models import Environment, MLSystem

COMMENT_COLUMN = 56
"""Origin comments start after the longest commented line, but never further right than this."""


def _with_origins(value: Any, path: SpecPath, effective: Document, base: Document) -> Any:
    """``value`` with every leaf (a scalar or an empty mapping or list) commented with its
    origin: ``file:line``, ``(override)`` when an overlay set it, ``default`` when nobody did."""
    if isinstance(value, dict) and value:
        return {k: _with_origins(v, (*path, k), effective, base) for k, v in value.items()}
    if isinstance(value, list) and value:
        return [_with_origins(v, (*path, i), effective, base) for i, v in enumerate(value)]
    location: Location | None = effective.values.get(path)
    if location is None:
        return yamltext.Commented(value, "default")
    mark = " (override)" if base.values.get(path) != location else ""
    # A file name is text from the repository: escaped as every renderer escapes spec text, so
    # a newline or a terminal escape in it cannot end the comment or drive a terminal (and what
    # is left beyond ASCII with YAML's escapes: the output is ASCII).
    shown = yamltext.comment_text(make_safe(location.file, keep=""))
    return yamltext.Commented(value, f"{shown}:{location.line}{mark}")


def effective_data(validated: MLSystem, effective: Document) -> dict[str, Any]:
    """The validated spec with defaults filled in; empty defaults nobody wrote are left out."""
    dumped = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    # Values that differ from their default are kept even when empty (``indicator:
    # availability`` is ``{availability: {}}``, which nobody wrote as such).
    explicit = validated.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    data: dict[str, Any] = _prune(dumped, (), effective, explicit)
    for name, env in validated.environments.items():
        data["environments"][name] = _with_production(data["environments"][name], name, env)
    return data


def _with_production(env: dict[str, Any], name: str, spec: Environment) -> dict[str, Any]:
    """``env`` with its effective ``production`` (the default follows the name), after
    ``target`` when nobody wrote it."""
    if "production" in env:
        return env
    shown: dict[str, Any] = {}
    for key, value in env.items():
        shown[key] = value
        if key == "target":
            shown["production"] = is_production(name, spec)
    return shown


def _prune(value: Any, path: SpecPath, effective: Document, explicit: Any = None) -> Any:
    if isinstance(value, dict):
        given = explicit if isinstance(explicit, dict) else {}
        kept = {k: _prune(v, (*path, k), effective, given.get(k)) for k, v in value.items()}
        return {
            k: v
            for k, v in kept.items()
            if v not in ({}, []) or (*path, k) in effective.values or k in given
        }
    if isinstance(value, list):
        items = explicit if isinstance(explicit, list) else []
        return [
            _prune(v, (*path, i), effective, items[i] if i < len(items) else None)
            for i, v in enumerate(value)
        ]
    return value


def explain_yaml(
    validated: MLSystem, effective: Document, base: Document, environment: str, show_origin: bool
) -> str:
    """The effective spec of ``environment`` as YAML text, defaults included (``environments``
    other than it and every ``overrides`` block are left out: they are already applied)."""
    data = effective_data(validated, effective)
    envs = data.get("environments", {})
    if isinstance(envs, dict) and environment in envs:
        env = {k: v for k, v in envs[environment].items() if k != "overrides"}
        data["environments"] = {environment: env}
        keep_ci_of(data, environment)
    if show_origin:
        data = {k: _with_origins(v, (k,), effective, base) for k, v in data.items()}
    header = yamltext.comment_text(f"effective spec of environment {environment!r}")
    return yamltext.dump(data, [header], align_comments=COMMENT_COLUMN)


def keep_ci_of(data: dict[str, Any], environment: str) -> None:
    """CI settings of the environments left out would name environments the printed spec no
    longer defines: keep only the explained environment's."""
    ci = data.get("ci")
    if not isinstance(ci, dict) or not isinstance(ci.get("environments"), dict):
        return
    kept = {k: v for k, v in ci["environments"].items() if k == environment}
    if kept:
        data["ci"] = {**ci, "environments": kept}
    else:
        data["ci"] = {k: v for k, v in ci.items() if k != "environments"}


def explain_json(validated: MLSystem, effective: Document, environment: str) -> str:
    data = effective_data(validated, effective)
    origins = {
        _path_text(path): str(location)
        for path, location in sorted(effective.values.items(), key=_sort_key)
    }
    payload = {"environment": environment, "spec": data, "origins": origins}
    return canonical.canonical_json(payload)


def _sort_key(item: tuple[SpecPath, Location]) -> tuple[str, int, int]:
    location = item[1]
    return (location.file, location.line, location.column)


def _path_text(path: SpecPath) -> str:
    from mlplane.compiler.core.diagnostics import format_path

    return format_path(path) or "$"
