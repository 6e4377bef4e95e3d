"""The JSON Schemas of the spec language, generated from the pydantic models.

Two schemas are committed next to this module and drift-tested:

- ``mlplane.v1.schema.json`` — a whole spec (one file, or all files of a directory merged);
- ``mlplane.v1.fragment.schema.json`` — one file of a multi-file spec: the same definitions,
  but no top-level section is required, so an editor does not flag ``models.yaml`` for lacking
  ``metadata``. (The compiler still checks the merged whole.)

This module only builds the schemas as data: ``schema/`` is the bottom floor and imports
nothing of the compiler. The committed text (canonical JSON) and the files are written by
``python -m mlplane.compiler.build.schema_files`` (or ``make generate``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

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
