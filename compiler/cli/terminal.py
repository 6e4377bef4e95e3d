"""What the command line asks of the terminal it writes to."""

from __future__ import annotations

import os


def use_color(stream: object) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())
