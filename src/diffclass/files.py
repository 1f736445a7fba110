"""Reading the JSON files users hand us without trusting them, and writing files that must never be half-written."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from diffclass.errors import DiffclassError

UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it), then restored
os.umask(UMASK)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file that must never be half-written (a config, options): a temporary file, then a rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~UMASK)  # what a plain open() gives, not mkstemp's owner-only 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise DiffclassError(f"cannot write {path}: {exc.strerror or exc}") from None


MAX_JSON_BYTES = 256 * 2**20  # a config, a tree, a model's diffclass.json: far below this


def read_text(path: str | Path, what: str = "file") -> str:
    """A text file read with bounds, every failure one line naming the file: a regular file only (a FIFO would
    hang, /dev/zero would fill memory), at most 256 MiB, UTF-8."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DiffclassError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise DiffclassError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DiffclassError(f"{path}: not a regular file")
    if info.st_size > MAX_JSON_BYTES:
        raise DiffclassError(f"{path}: {info.st_size / 2**20:.0f} MiB is too large for a {what}")
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_JSON_BYTES + 1).decode("utf-8")
    except OSError as exc:
        raise DiffclassError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DiffclassError(f"{path}: not UTF-8 text") from None


def read_json(path: str | Path, what: str = "file"):
    """A JSON file parsed with bounds (`read_text`'s, and nested at most about a thousand deep, with no integer
    longer than Python reads: 4,300 digits), every failure one line naming the file."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except RecursionError:
        raise DiffclassError(f"{path}: nested too deeply to be a {what}") from None
    except ValueError as exc:  # JSONDecodeError, or an integer over the digit limit
        raise DiffclassError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None


PACKAGE = Path(__file__).resolve().parent  # never written to: a command's output goes where the user said, outside


def check_output(path: str | Path, folder: bool = False) -> Path:
    """Refuse an output path that cannot be written *before* any work is done, so that nothing computed is lost:
    a file where a folder is wanted (or the reverse), a parent that is a file, a folder that is not writable, a
    place inside the installed package."""
    path = Path(path)
    if path.resolve().is_relative_to(PACKAGE):
        raise DiffclassError(
            f"{path} is inside the installed diffclass package (its embedded models and data); write somewhere else"
        )
    wanted, other = ("folder", "file") if folder else ("file", "folder")
    if path.exists() and path.is_dir() != folder:
        raise DiffclassError(f"{path} is a {other}; a {wanted} is needed here")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DiffclassError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DiffclassError(f"cannot write {path}: {existing} is not writable")
    return path
