"""``docs/diagnostics.md``, generated from the registry of diagnostic codes; do not edit the output.

Run ``python -m mlplane.compiler.build.codes_doc [OUTPUT]`` (or ``make generate``) after
registering a code; a test fails while the committed file differs from what this prints. The table
itself is ``codes.code_table_markdown``; this module only parses arguments and writes atomically,
which is why it lives on the build floor, next to the writer, and not in ``core``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlplane.compiler.build.writer import write_new_file
from mlplane.compiler.core.codes import code_table_markdown

DEFAULT_OUTPUT = Path("docs/diagnostics.md")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlplane.compiler.build.codes_doc",
        description="Write the table of diagnostic codes generated from the registry.",
    )
    parser.add_argument(
        "output",
        nargs="?",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"file to write (default: {DEFAULT_OUTPUT})",
    )
    arguments = parser.parse_args(argv)
    write_new_file(arguments.output, code_table_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
