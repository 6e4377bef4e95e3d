"""The committed JSON Schemas of the language, as text and as files.

``schema/export.py`` builds the two schemas as data (the language imports nothing of the
compiler); this module writes them as canonical JSON, the one writer of that format, so the
committed files, ``mlplane schema`` and the drift test agree byte for byte. Run
``python -m mlplane.compiler.build.schema_files [DIRECTORY]`` (or ``make generate``) after
changing the language.

Policy parameters: the language's ``PolicyRule.params`` is an open mapping (``schema/`` knows no
rules), and the policy engine checks it against each rule's own model. The exported schemas
add what the installed packs declare, so editors complete and check parameters too: the
``policies.rules`` mapping gets one property per rule that takes parameters, ``{"$ref":
PolicyRule, "properties": {"params": <the rule's parameter schema>}}``, the parameter models'
definitions joining ``$defs``. Properties keyed by rule id rather than ``if``/``then`` on each
id: the same check, but editors offer the ids and their parameters as completions. Other ids
(rules without parameters, Rego rules) stay under ``additionalProperties``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlplane.compiler.build.writer import write_new_file
from mlplane.compiler.core.canonical import canonical_json
from mlplane.compiler.policy.engine import Rule, installed_rules
from mlplane.schema.export import FRAGMENT_FILE, SCHEMA_FILE, fragment_schema, json_schema


def schema_text() -> str:
    """``mlplane.v1.schema.json``: the schema of a whole spec."""
    return canonical_json(with_policy_params(json_schema(), installed_rules()))


def fragment_schema_text() -> str:
    """``mlplane.v1.fragment.schema.json``: the schema of one file of a multi-file spec."""
    return canonical_json(with_policy_params(fragment_schema(), installed_rules()))


def with_policy_params(schema: dict[str, Any], rules: Sequence[Rule]) -> dict[str, Any]:
    """``schema`` with the parameters of each rule that declares some (see the module
    docstring); ``schema`` itself is not changed."""
    result = copy.deepcopy(schema)
    definitions: dict[str, Any] = result["$defs"]
    per_rule: dict[str, Any] = {}
    for rule in rules:
        if rule.params is None:
            continue
        params = rule.params.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        for name, definition in params.pop("$defs", {}).items():
            if definitions.setdefault(name, definition) != definition:
                raise ValueError(f"policy rule {rule.id!r}: a different definition {name!r}")
        params.pop("title", None)
        per_rule[rule.id] = {"$ref": "#/$defs/PolicyRule", "properties": {"params": params}}
    if per_rule:
        definitions["Policies"]["properties"]["rules"]["properties"] = per_rule
    return result


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlplane.compiler.build.schema_files",
        description="Write the spec's JSON Schema and the schema of one file of a multi-file spec.",
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=SCHEMA_FILE.parent,
        help="directory to write both schema files into (default: the package's schema/)",
    )
    arguments = parser.parse_args(argv)
    write_new_file(arguments.directory / SCHEMA_FILE.name, schema_text())
    write_new_file(arguments.directory / FRAGMENT_FILE.name, fragment_schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
