"""Writing files safely: atomically (temporary file, then rename) and never through a symlink."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class UnsafePathError(Exception):
    """The destination is a symbolic link or otherwise unsafe to write."""


def write_new_file(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically: readers see the old file or the new one, never half.

    Refuses a symlinked destination, so a hostile checkout cannot redirect the write.
    """
    if target.is_symlink():
        raise UnsafePathError(f"{target} is a symbolic link; refusing to write through it")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
