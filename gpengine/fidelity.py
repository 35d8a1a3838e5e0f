"""Multi-fidelity: successive halving with asynchronous promotion (ASHA-style rungs).

Training is the cost, and most candidates can be told apart with a fraction of
it. With `fidelity=sh` every new candidate is evaluated at the lowest budget
of a geometric ladder

    budget * eta**-K, ..., budget / eta, budget      (K = floor(log_eta(budget / min_budget)))

and a candidate is promoted one rung up when it is among the best
floor(n / eta) of the n candidates evaluated at its rung so far (Li et al.,
"A System for Massively Parallel Hyperparameter Tuning", 2020: the rule that
makes successive halving work without waiting for a whole bracket). So about
1/eta of the candidates reach each next rung, and each rung costs about as
much as the one below.

A promotion is a new, separately evaluated individual: operator "promote",
one parent (the lower-fidelity record), the same expression, the higher
budget, its own derived seed. Every rung's result stays in the journal and in
MLflow; lineage (who was bred from whom) is untouched, since children always
name the records they were bred from.

Everything here is a pure function of the individuals evaluated so far, so a
resumed search recomputes the same rungs from its journal and checkpoints
need no extra state.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from gpengine.evaluator import REJECTED
from gpengine.individual import Individual
from gpengine.selection import rank_key

PROMOTE = "promote"


def ladder(min_budget: float, max_budget: float, eta: int) -> tuple[float, ...]:
    """The budgets of the rungs, lowest first; one rung when min_budget >= max_budget."""
    if eta < 2:
        raise ValueError(f"eta must be at least 2, got {eta}")
    if min_budget <= 0 or max_budget <= 0:
        raise ValueError("budgets must be positive")
    if min_budget >= max_budget:
        return (float(max_budget),)
    k = int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9))
    return tuple(float(max_budget) * eta ** -(k - i) for i in range(k + 1))


def identity(ind: Individual) -> str:
    """What makes two records the same candidate: behaviour fingerprint, else canonical hash."""
    return ind.fingerprint or ind.expr_hash or str(ind.expr)


def rung_of(budget: float, rungs: Sequence[float]) -> int | None:
    for i, b in enumerate(rungs):
        if math.isclose(budget, b, rel_tol=1e-9):
            return i
    return None


def promotions(individuals: Iterable[Individual], rungs: Sequence[float], eta: int,
               pending: Iterable[tuple[str, float]] = ()) -> list[tuple[Individual, float]]:
    """(record to promote, budget to run it at), lowest rung first, best first within a rung.

    A rung's members are the first measured record of each candidate at that
    budget (pre-screen rejections cost nothing and do not count). A member is
    promoted when it is in the rung's top floor(n / eta), measured, and has no
    record (done or `pending`) at the next rung. Re-evaluations ("reeval") do
    not enter rungs.
    """
    members: list[dict[str, Individual]] = [{} for _ in rungs]
    for ind in individuals:
        if ind.operator == "reeval" or ind.result.status == REJECTED:
            continue
        r = rung_of(ind.budget, rungs)
        if r is not None:
            members[r].setdefault(identity(ind), ind)
    waiting = {(key, rung_of(b, rungs)) for key, b in pending}
    out: list[tuple[Individual, float]] = []
    for r in range(len(rungs) - 1):
        rung = members[r]
        top = sorted(rung.values(), key=rank_key)[: len(rung) // eta]
        for ind in top:
            key = identity(ind)
            if math.isfinite(ind.fitness) and key not in members[r + 1] and (key, r + 1) not in waiting:
                out.append((ind, rungs[r + 1]))
    return out


__all__ = ["PROMOTE", "identity", "ladder", "promotions", "rung_of"]
