"""A persistent cache of evaluation results, shared across searches and resumes.

Keyed by (evaluator configuration, behaviour fingerprint, budget, seed): the
same function at the same fidelity with the same seed is trained once, ever.
SQLite (stdlib) gives durable, atomic, multi-process-safe writes; each result
is committed the moment it arrives, so a killed search loses nothing that
finished.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

from gpengine.errors import GpengineError
from gpengine.evaluator import FAILED, OK, Result


def result_to_json(result: Result) -> str:
    return json.dumps(
        {
            "fitness": result.fitness,
            "status": result.status,
            "message": result.message,
            "metrics": dict(result.metrics),
            "curves": {k: list(v) for k, v in result.curves.items()},
            "cost": result.cost,
        },
        allow_nan=True,
    )


def result_from_json(text: str | dict) -> Result:
    d = json.loads(text) if isinstance(text, str) else text
    return Result(d["fitness"], d["status"], d["message"], d["metrics"], d["curves"], d["cost"])


class ResultStore:
    def __init__(self, path: str | Path, config_key: str):
        self.path = Path(path)
        self.config_key = config_key
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, result TEXT NOT NULL, "
                "search_id TEXT, created REAL)"
            )
        except (OSError, sqlite3.Error) as exc:  # $GPENGINE_CACHE a file, a read-only home, a damaged database
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise GpengineError(f"cannot open the result cache {self.path}: {reason}; point $GPENGINE_CACHE "
                                "at a writable folder, or set cache=false") from None

    def _key(self, fingerprint: str, budget: float, seed: int) -> str:
        return f"{self.config_key}|{fingerprint}|{float(budget)!r}|{seed}"

    def get(self, fingerprint: str, budget: float, seed: int) -> tuple[Result, str] | None:
        """The stored result and the id of the search that computed it."""
        row = self._db.execute(
            "SELECT result, search_id FROM results WHERE key = ?", (self._key(fingerprint, budget, seed),)
        ).fetchone()
        return (result_from_json(row[0]), row[1] or "") if row else None

    def put(self, fingerprint: str, budget: float, seed: int, result: Result, search_id: str = "") -> None:
        if result.status == FAILED or (result.status == OK and not math.isfinite(result.fitness)):
            return  # failures may be transient (a killed worker): never cache them
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
            (self._key(fingerprint, budget, seed), result_to_json(result), search_id, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __getstate__(self):  # never shipped to workers
        raise TypeError("ResultStore stays in the main process")
