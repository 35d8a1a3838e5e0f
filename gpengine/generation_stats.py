"""Per-generation statistics: one definition for every output that shows them.

The search computes them when a generation ends (`population_stats`); the
MLflow metrics and fitness plot, the checkpoint's history and the HTML report
all show these same values, never a recomputation under another definition.
A generation's numbers describe the population at its end (what selection
breeds from, in every mode, steady state included): its best, mean and median
measured fitness and its diversity (distinct behaviours / members), beside the
search's running totals of evaluations actually run, failed or rejected
records and evaluator seconds. Generation 0 is the first population.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable, Sequence

import attrs
import numpy as np

from gpengine.events import GenerationStats
from gpengine.individual import Individual

#: the statistics of a generation, in the order tables show them
FIELDS = ("generation", "best", "mean", "median", "diversity", "evaluations", "failures", "cost")


def population_stats(generation: int, population: Sequence[Individual], *, evaluations: int, failures: int,
                     cost: float) -> GenerationStats:
    fits = [i.fitness for i in population if np.isfinite(i.fitness)]
    best = max(population, key=lambda i: (i.fitness, -i.size, -i.id))
    distinct = len({i.fingerprint or i.canonical or str(i.expr) for i in population})
    return GenerationStats(
        generation=generation,
        best=float(best.fitness) if np.isfinite(best.fitness) else float("nan"),
        mean=float(np.mean(fits)) if fits else float("nan"),
        median=float(statistics.median(fits)) if fits else float("nan"),
        diversity=distinct / len(population),
        evaluations=evaluations,
        failures=failures,
        cost=cost,
        best_id=best.id,
    )


def as_rows(history: Iterable[GenerationStats]) -> list[dict[str, Any]]:
    """The history as table rows ({field: value}), generation order."""
    rows = [{k: v for k, v in attrs.asdict(s).items() if k in FIELDS} for s in history]
    return sorted(rows, key=lambda r: r["generation"])
