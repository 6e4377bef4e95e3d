"""The JSON Schemas of the spec language, generated from the pydantic models.

Two schemas are committed next to this module and drift-tested:

- ``mlplane.v1.schema.json`` — a whole spec (one file, or all files of a directory merged);
- ``mlplane.v1.fragment.schema.json`` — one file of a multi-file spec: the same definitions,
  but no top-level section is required, so an editor does not flag ``models.yaml`` for lacking
  ``metadata``. (The compiler still checks the merged whole.)

``python -m mlplane.schema.export`` rewrites both.
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
from mlplane.schema.models import MLSystem

SCHEMA_ID = "https://mlplane.dev/schema/mlplane.v1.schema.json"
FRAGMENT_ID = "https://mlplane.dev/schema/mlplane.v1.fragment.schema.json"
SCHEMA_FILE = Path(__file__).with_name("mlplane.v1.schema.json")
FRAGMENT_FILE = Path(__file__).with_name("mlplane.v1.fragment.schema.json")


def json_schema() -> dict[str, Any]:
    """The schema as a dict: draft 2020-12, every object closed (additionalProperties false)."""
    schema = MLSystem.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mlplane spec v1",
        **schema,
    }


def fragment_schema() -> dict[str, Any]:
    """The schema of one file of a multi-file spec: nothing required at the top level."""
    schema = copy.deepcopy(json_schema())
    schema["$id"] = FRAGMENT_ID
    schema["title"] = "mlplane spec v1 (one file of a multi-file spec)"
    schema.pop("required", None)
    return schema


def _text(schema: dict[str, Any]) -> str:
    return canonical_json(schema)


def schema_text() -> str:
    return _text(json_schema())


def fragment_schema_text() -> str:
    return _text(fragment_schema())


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlplane.schema.export",
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
