"""The append-only journal of a search: one JSON line per evaluated individual.

Written by the main process as results arrive (flushed and fsynced at the end of
each batch of results), so a killed search keeps everything it evaluated. A
partial last line (killed mid-write) is ignored and cut off on resume.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from gpengine.errors import GpengineError, SaveError
from gpengine.events import IndividualEvaluated, SearchStarted
from gpengine.expr_text import parse
from gpengine.individual import Individual
from gpengine.result_store import result_from_json, result_to_json

JOURNAL = "journal.jsonl"


def individual_to_json(ind: Individual) -> str:
    return json.dumps(
        {
            "id": ind.id,
            "expr": str(ind.expr),
            "generation": ind.generation,
            "operator": ind.operator,
            "parent_ids": list(ind.parent_ids),
            "canonical": ind.canonical,
            "expr_hash": ind.expr_hash,
            "fingerprint": ind.fingerprint,
            "budget": ind.budget,
            "seed": ind.seed,
            "cached": ind.cached,
            "result": json.loads(result_to_json(ind.result)),
        },
        allow_nan=True,
    )


def individual_from_json(line: str) -> Individual:
    d = json.loads(line)
    return Individual(
        id=d["id"],
        expr=parse(d["expr"]),
        generation=d["generation"],
        operator=d["operator"],
        parent_ids=tuple(d["parent_ids"]),
        canonical=d["canonical"],
        expr_hash=d["expr_hash"],
        fingerprint=d["fingerprint"],
        budget=d["budget"],
        seed=d["seed"],
        result=result_from_json(d["result"]),
        cached=d["cached"],
    )


def read_journal(path: str | Path, repair: bool = False) -> list[Individual]:
    """Every complete record; with `repair`, cut a partial last line off the file.

    A complete line that cannot be read is no torn write: GpengineError names the file and the line,
    and nothing is cut.
    """
    p = Path(path)
    if not p.exists():
        return []
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise GpengineError(f"journal {p} cannot be read: {exc.strerror or exc}") from None
    end = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
    records = []
    for number, line in enumerate(data[:end].split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(individual_from_json(line.decode()))
        except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError and ParseError are ValueErrors
            raise GpengineError(f"journal {p} is damaged at line {number} ({type(exc).__name__}: {exc})") from None
    if repair and end != len(data):
        with p.open("r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    return records


def count_records(path: str | Path, repair: bool = False) -> int:
    """How many complete lines the journal holds, without reading them; with `repair`, cut a
    partial last line off the file (`read_journal` is the one that checks the records)."""
    p = Path(path)
    if not p.exists():
        return 0
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise GpengineError(f"journal {p} cannot be read: {exc.strerror or exc}") from None
    end = data.rfind(b"\n") + 1
    if repair and end != len(data):
        with p.open("r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    return sum(1 for line in data[:end].split(b"\n") if line.strip())


class Journal:
    """Listener: appends each individual once (ids already written are skipped on resume)."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / JOURNAL
        # Counted, not parsed: a resume reads (and checks) every record once, in Search.resume;
        # parsing them here as well doubled its start-up (20 s for a journal of 120,000 records).
        self.written = count_records(self.path)
        self._fh = None
        self._broken = False

    def on_search_start(self, event: SearchStarted) -> None:
        try:
            count_records(self.path, repair=True)  # a torn last line must not prefix the next record
            self._fh = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise self._failed(exc) from None

    def on_individual(self, event: IndividualEvaluated) -> None:
        ind = event.individual
        if ind.id >= self.written:
            if ind.id != self.written:
                raise RuntimeError(f"journal gap: expected id {self.written}, got {ind.id}")
            try:
                self._fh.write(individual_to_json(ind) + "\n")
            except OSError as exc:
                raise self._failed(exc) from None
            self.written += 1
        if event.batch_end:
            self.sync()

    def sync(self) -> None:
        if self._fh is not None and not self._broken:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> SaveError:
        """A write that failed (disk full...): the journal holds the lines before it (a torn last
        one is cut on resume); nothing more is written, so the search stops."""
        self._broken = True
        return SaveError(f"cannot write {self.path}: {exc.strerror or exc}")

    def on_search_end(self, event) -> None:
        try:
            self.sync()
        finally:
            if self._fh is not None:
                fh, self._fh = self._fh, None
                with contextlib.suppress(OSError):  # after a failed write, its flush fails again
                    fh.close()
