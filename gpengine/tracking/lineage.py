"""The lineage table: one flat row per individual, written as CSV.

A row is the tracking view of an `Individual`: plain strings and numbers, so
the same shape comes out of the engine (``row_of``), out of a CSV artifact
(``read_csv``) and out of MLflow child runs (readback). The genealogy page,
the SVG and the terminal tree all work on rows, which is what lets them be
rebuilt from MLflow alone, without engine state.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable

from gpengine.evaluator import MEASURED
from gpengine.noise import REEVAL

COLUMNS = (
    "id",
    "generation",
    "operator",
    "parent_ids",
    "expr",
    "canonical",
    "expr_hash",
    "fingerprint",
    "status",
    "fitness",
    "budget",
    "seed",
    "cost",
    "cached",
    "size",
    "depth",
    "message",
    "seed_fitness",  # a re-evaluation's own seed's score (its fitness is the mean so far); empty otherwise
)

_INT = ("id", "generation", "seed", "size", "depth")
_FLOAT = ("fitness", "budget", "cost", "seed_fitness")


def row_of(ind: Any) -> dict[str, Any]:
    """The lineage row of an Individual (typed values; `parent_ids` a tuple of ints)."""
    res = ind.result
    return {
        "id": int(ind.id),
        "generation": int(ind.generation),
        "operator": ind.operator,
        "parent_ids": tuple(int(p) for p in ind.parent_ids),
        "expr": str(ind.expr),
        "canonical": ind.canonical,
        "expr_hash": ind.expr_hash,
        "fingerprint": ind.fingerprint,
        "status": res.status,
        "fitness": float(res.fitness),
        "budget": float(ind.budget),
        "seed": int(ind.seed),
        "cost": float(res.cost),
        "cached": bool(ind.cached),
        "size": int(ind.size),
        "depth": int(ind.depth),
        "message": res.message,
        "seed_fitness": float(res.metrics["seed_fitness"]) if "seed_fitness" in res.metrics else None,
    }


def is_ok(row: dict[str, Any]) -> bool:
    """Whether the row's fitness is a real measurement (as `Result.ok`)."""
    f = row.get("fitness")
    return row.get("status") in MEASURED and f is not None and math.isfinite(f)


def rank_key(row: dict[str, Any]) -> tuple[float, int]:
    """Sort key, best first when used with `sorted(...)`: higher fitness, then older id."""
    return (-(row["fitness"] if is_ok(row) else -math.inf), row["id"])


def candidate_key(row: dict[str, Any]) -> str:
    """What makes two rows records of one candidate (`fidelity.identity` for rows)."""
    return row.get("fingerprint") or row.get("expr_hash") or row["expr"]


def _information(row: dict[str, Any]) -> tuple:
    """Which row of a candidate speaks for it: highest budget, then most seeds (`metrics["replicates"]`
    where the row has its metrics; else the latest re-evaluation, each being the mean over one seed
    more), then as the hall of fame keeps one of equals: higher fitness, smaller, older."""
    reeval = row.get("operator") == REEVAL
    seeds = int((row.get("metrics") or {}).get("replicates", 2)) if reeval else 1
    return (float(row.get("budget") or 1.0), seeds, row["id"] if reeval else 0,
            row["fitness"], -(row.get("size") or 0), -row["id"])


def standing(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each candidate's most informed measured row, best first: highest budget first (scores at different
    budgets measure different things), then as `hall_of_fame.ranked` orders a budget. The search's hall of fame,
    rebuilt from rows: with multi-fidelity or replicates a candidate is its full-budget score or its mean
    over every seed, never a lucky short run or a stale mean."""
    top: dict[str, dict[str, Any]] = {}
    for r in rows:
        if is_ok(r):
            k = candidate_key(r)
            if k not in top or _information(r) > _information(top[k]):
                top[k] = r
    from gpengine.hall_of_fame import ranked_by_budget  # the search's own order, exact fits tied within noise

    return ranked_by_budget(top.values(), budget=lambda r: float(r.get("budget") or 1.0),
                            fitness=lambda r: r["fitness"], size_and_id=lambda r: (r.get("size") or 0, r["id"]))


def format_ids(ids: Iterable[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


def parse_ids(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    return tuple(int(t) for t in str(text).replace(";", ",").split(",") if t.strip())


def _cell(key: str, value: Any) -> str:
    if key == "parent_ids":
        return format_ids(value)
    if key == "cached":
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # round-trips exactly, including nan and inf
    return "" if value is None else str(value)


def write_csv(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write every row (sorted by id) with the fixed COLUMNS header."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in sorted(rows, key=lambda r: r["id"]):
            writer.writerow([_cell(k, row.get(k)) for k in COLUMNS])
    return path


def typed(raw: dict[str, Any]) -> dict[str, Any]:
    """Convert a row of strings (CSV, MLflow tags) to typed values; missing cells stay None."""
    row: dict[str, Any] = {}
    for key in COLUMNS:
        value = raw.get(key)
        if key == "parent_ids":
            row[key] = value if isinstance(value, tuple) else parse_ids(value)
        elif value is None or value == "":
            row[key] = None if key not in ("operator", "expr", "status", "message") else (value or "")
        elif key in _INT:
            row[key] = int(float(value))
        elif key in _FLOAT:
            row[key] = float(value)
        elif key == "cached":
            row[key] = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
        else:
            row[key] = str(value)
    return row


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a lineage CSV, typed."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return [typed(r) for r in csv.DictReader(fh)]
