"""The hall of fame: the best distinct individuals a search has seen.

A population forgets its best when selection or noise drops them; the hall
of fame keeps them for reports, export and MLflow's "notable" child runs.
Distinct means distinct behaviour: individuals are keyed by their behaviour
fingerprint when they have one (so `x + x` and `2 * x` count once), else by
canonical text, else by the printed expression. Per key the better one is
kept, ranked by `selection.rank_key` (fitness, then size, then id). Failed
individuals (fitness -inf) never enter.

A plain object of built-in containers: it pickles for checkpoints and resume.
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

from gpengine.individual import Individual
from gpengine.selection import rank_key


def identity_key(ind: Individual) -> str:
    """What makes two individuals the same for the hall of fame."""
    if ind.fingerprint:
        return "fp:" + ind.fingerprint
    if ind.canonical:
        return "canon:" + ind.canonical
    return "expr:" + str(ind.expr)


class HallOfFame:
    """At most `capacity` best distinct individuals, iterated best first."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"hall of fame capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self._members: list[Individual] = []  # best first

    def update(self, individuals: Iterable[Individual]) -> list[Individual]:
        """Offer individuals; returns those that entered (in the order offered)."""
        by_key = {identity_key(m): m for m in self._members}
        offered = []
        for ind in individuals:
            if not math.isfinite(ind.fitness):
                continue
            key = identity_key(ind)
            old = by_key.get(key)
            if old is None or rank_key(ind) < rank_key(old):
                by_key[key] = ind
                offered.append(ind)
        self._members = sorted(by_key.values(), key=rank_key)[: self.capacity]
        kept = {id(m) for m in self._members}
        return [ind for ind in offered if id(ind) in kept]

    @property
    def best(self) -> Individual | None:
        return self._members[0] if self._members else None

    def __iter__(self) -> Iterator[Individual]:
        return iter(list(self._members))

    def __len__(self) -> int:
        return len(self._members)

    def __getitem__(self, i: int) -> Individual:
        return self._members[i]

    def __contains__(self, ind: object) -> bool:
        return isinstance(ind, Individual) and any(m is ind or m == ind for m in self._members)

    def __repr__(self) -> str:
        return f"HallOfFame(capacity={self.capacity}, size={len(self)}, best={self.best.fitness if self.best else None})"
