"""Writing files that must never be half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from diffclass.errors import DiffclassError


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file that must never be half-written (a config, options): a temporary file, then a rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise DiffclassError(f"cannot write {path}: {exc.strerror or exc}") from None
