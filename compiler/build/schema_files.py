"""The committed JSON Schemas of the language, as text and as files.

``schema/export.py`` builds the two schemas as data (the language imports nothing of the
compiler); this module writes them as canonical JSON, the one writer of that format, so the
committed files, ``mlplane schema`` and the drift test agree byte for byte. Run
``python -m mlplane.compiler.build.schema_files [DIRECTORY]`` (or ``make generate``) after
changing the language.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlplane.compiler.build.writer import write_new_file
from mlplane.compiler.core.canonical import canonical_json
from mlplane.schema.export import FRAGMENT_FILE, SCHEMA_FILE, fragment_schema, json_schema


def schema_text() -> str:
    """``mlplane.v1.schema.json``: the schema of a whole spec."""
    return canonical_json(json_schema())


def fragment_schema_text() -> str:
    """``mlplane.v1.fragment.schema.json``: the schema of one file of a multi-file spec."""
    return canonical_json(fragment_schema())


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
