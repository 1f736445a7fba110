"""Resumable evaluation results: one JSON line per image, flushed as it is made, keyed by the options' hash.

A rerun of the same command skips the images already recorded; a rerun with different options refuses to mix
its results with the old ones. Under `torchrun` every rank appends to its own file and all files are read back.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

from diffclass.errors import DiffclassError

OPTIONS_FILE = "options.json"


def options_hash(options: dict) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


class RecordStore:
    def __init__(self, folder: str | Path, options: dict, overwrite: bool = False, rank: int = 0):
        self.folder = Path(folder)
        self.options = dict(options, hash=options_hash(options))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if overwrite and rank == 0:
                for old in [*self.folder.glob("records*.jsonl"), self.folder / OPTIONS_FILE]:
                    old.unlink(missing_ok=True)
            path = self.folder / OPTIONS_FILE
            if path.is_file() and not overwrite:
                old = json.loads(path.read_text())
                if old.get("hash") != self.options["hash"]:
                    changed = sorted(k for k in set(old) | set(options) if k != "hash" and old.get(k) != options.get(k))
                    raise DiffclassError(
                        f"{self.folder} holds results made with other options ({', '.join(changed)}); "
                        "use another --out folder or --overwrite"
                    )
            elif rank == 0:
                path.write_text(json.dumps(self.options, indent=2) + "\n")
            self.path = self.folder / (f"records.rank{rank}.jsonl" if rank else "records.jsonl")
            self._drop_partial_line()
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (closed by close())
        except OSError as exc:
            raise DiffclassError(f"cannot write results to {self.folder}: {exc.strerror or exc}") from None

    def _drop_partial_line(self) -> None:
        """A process killed mid-write leaves a line without its newline: cut it, the image is redone."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def done(self) -> dict[str, dict]:
        """Every record of every rank's file, by image id."""
        records = {}
        for path in sorted(self.folder.glob("records*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash in another rank's file
                records[record["id"]] = record
        return records

    def append(self, records) -> None:
        for record in records:
            data = asdict(record) if is_dataclass(record) else record
            self._file.write(json.dumps(data, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
