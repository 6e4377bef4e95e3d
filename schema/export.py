"""The JSON Schema of the spec language, generated from the pydantic models.

``schema/mlplane.v1.schema.json`` is this text committed; a test fails when the two drift, and
``python -m mlplane.schema.export`` rewrites the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mlplane.schema.models import MLSystem

SCHEMA_ID = "https://mlplane.dev/schema/mlplane.v1.schema.json"
SCHEMA_FILE = Path(__file__).with_name("mlplane.v1.schema.json")


def json_schema() -> dict[str, Any]:
    """The schema as a dict: draft 2020-12, every object closed (additionalProperties false)."""
    schema = MLSystem.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mlplane spec v1",
        **schema,
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_FILE
    target.write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    main()
