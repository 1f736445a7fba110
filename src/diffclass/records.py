"""Resumable evaluation results: one JSON line per image, flushed as it is made, keyed by the options' hash.

A rerun of the same command skips the images already recorded. Every record carries the hash of the options that
made it, so a record is only reused by a run with the same options, whatever happened to `options.json`: a rerun
with other options computes its own records beside the old ones (which a later run with the old options reuses),
and a line that is not a record of this run (cut by a crash, damaged, from other options) is skipped and redone.
`options.json` says which options the folder's last run used. Under `torchrun` every rank appends to its own file
and all files are read back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

from diffclass.errors import DiffclassError
from diffclass.files import write_text_atomic

OPTIONS_FILE = "options.json"
RUN_KEY = "run"  # the field of every record that holds its options' hash

logger = logging.getLogger(__name__)


def json_digest(value, length: int | None = 16) -> str:
    """The project's one digest of a JSON-able value (options, identities, class lists, image id lists): the same
    value gives the same name on every machine, so records and cached tables can be keyed by it."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def refuse_store_file(path: Path | None, folder: Path | None, option: str = "--json") -> None:
    """A result file must not be one of a record folder's own files (its records or options), which writing it
    would destroy: refused in one line before any work."""
    if path is None or folder is None or not Path(path).resolve().is_relative_to(Path(folder).resolve()):
        return
    name = Path(path).name
    if name == OPTIONS_FILE or (name.startswith("records") and name.endswith(".jsonl")):
        raise DiffclassError(f"{option} {path} would overwrite the records under --out {folder}; write it elsewhere")


class RecordStore:
    def __init__(self, folder: str | Path, options: dict, overwrite: bool = False, rank: int = 0):
        self.folder = Path(folder)
        self.options = dict(options, hash=json_digest(options))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if overwrite and rank == 0:
                for old in [*self.folder.glob("records*.jsonl"), self.folder / OPTIONS_FILE]:
                    old.unlink(missing_ok=True)
            path = self.folder / OPTIONS_FILE
            old = _read_options(path) if path.is_file() and not overwrite else None
            if old is not None and old.get("hash") != self.options["hash"]:
                changed = sorted(k for k in set(old) | set(options) if k != "hash" and old.get(k) != options.get(k))
                logger.info(
                    f"{self.folder} holds records made with other options ({', '.join(changed)}): they are kept "
                    "and not used; this run's records are computed beside them"
                )
            if rank == 0 and (old is None or old.get("hash") != self.options["hash"]):  # new, changed or damaged
                write_text_atomic(path, json.dumps(self.options, indent=2) + "\n")
            self.path = self.folder / (f"records.rank{rank}.jsonl" if rank else "records.jsonl")
            for path in (self.path, *self.folder.glob("records*.jsonl")):
                if path.exists() and not path.is_file():  # a FIFO would hang the run, /dev/zero fill memory
                    raise DiffclassError(
                        f"{path} is not a regular file; records need one (remove it or use another --out)"
                    )
            self._drop_partial_line()
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (closed by close())
            _lock(self._file, self.folder)
        except OSError as exc:
            raise DiffclassError(f"cannot write results to {self.folder}: {exc.strerror or exc}") from None

    def _drop_partial_line(self) -> None:
        """A process killed mid-write leaves a line without its newline: cut it, the image is redone."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    @property
    def hash(self) -> str:
        return self.options["hash"]

    def done(self) -> dict[str, list[dict]]:
        """Every record of this run in every rank's file (without the run hash), by image id, oldest first: an id
        may have several, made from different images under that name, of which the caller picks its own."""
        records, skipped = {}, 0
        for path in sorted(self.folder.glob("records*.jsonl")):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # cut by a crash, or damaged: that image is redone
                    record = None
                if (
                    not isinstance(record, dict)
                    or record.pop(RUN_KEY, None) != self.hash
                    or not isinstance(record.get("id"), str)
                ):
                    skipped += 1
                    continue
                records.setdefault(record["id"], []).append(record)
        if skipped:
            logger.warning(f"{self.folder}: {skipped} line(s) are not records of this run; their images are redone")
        return records

    def append(self, records) -> None:
        try:
            for record in records:
                data = asdict(record) if is_dataclass(record) else dict(record)
                self._file.write(json.dumps({**data, RUN_KEY: self.hash}, ensure_ascii=False) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise DiffclassError(
                f"cannot write records to {self.path}: {exc.strerror or exc}; the records so far are kept"
            ) from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _read_options(path: Path) -> dict | None:
    """The stored options, or None when the file is damaged (empty, cut, not an object)."""
    try:
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, cut, not UTF-8, too deep, a 5,000-digit integer
        return None
    return data if isinstance(data, dict) else None


def _lock(handle, folder: Path) -> None:
    """One writer per records file: a second run on the same --out (and rank) would redo and duplicate the work."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to take
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DiffclassError(
            f"another diffclass run is writing to {folder}; wait for it or use another --out"
        ) from None
