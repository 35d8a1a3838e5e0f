"""The hall of fame: the best distinct individuals a search has seen.

A population forgets its best when selection or noise drops them; the hall
of fame keeps them for reports, export and MLflow's "notable" child runs.
Distinct means distinct behaviour: individuals are keyed by their behaviour
fingerprint when they have one (so `x + x` and `2 * x` count once), else by
canonical text, else by the printed expression. Per key the better one is
kept. Ranking is by fitness, except that fitnesses equal within `REL_TOL`
(or both within `ABS_TOL` of zero) are a tie, and a tie ranks the smaller
expression first, then the older: a bloated form of the best must not outrank
it on floating-point noise (-3.9e-33 against -3.2e-33 are two exact fits).
Failed individuals (fitness -inf) never enter.

With multi-fidelity or replicates (`by_information`), a candidate's entry is
its most informed record (highest budget, then most seeds), not its luckiest:
a 1-epoch score or a 2-seed mean must not stand for a candidate whose 4-epoch
score or 3-seed mean is known, and members rank by budget first, because
scores at different budgets measure different things.

A plain object of built-in containers: it pickles for checkpoints and resume.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator, TypeVar

from gpengine.individual import Individual

#: Relative tolerance of a fitness tie. A float64 fitness summed over n terms carries a relative
#: rounding error of about n * 2.2e-16 (1e-13 for a thousand points); 1e-9 stays far above that
#: and far below any difference worth keeping a larger expression for (a constant's 4th digit
#: moves a fitness by about 1e-4 relative).
REL_TOL = 1e-9
#: Absolute tolerance near zero, where relative tolerance means nothing: an exact fit's error is
#: rounding noise of order eps**2 (1e-32) times the squared scale of the data, not a measurement.
ABS_TOL = 1e-12

T = TypeVar("T")


def ties(a: float, b: float) -> bool:
    """Whether two fitnesses are equal but for floating-point noise."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def ranked(individuals: Iterable[T], fitness: Callable[[T], float] = lambda m: m.fitness,
           size_and_id: Callable[[T], tuple] = lambda m: (m.size, m.id)) -> list[T]:
    """Best first: by fitness, and among fitnesses tied with the best of their group
    (`ties`) smaller size first, then lower id. `fitness` and `size_and_id` read them
    (lineage rows rank by the same rule).

    Groups start at the highest fitness not yet placed and take every fitness tied with it,
    so the order is well defined even where ties do not chain transitively."""
    by_fitness = sorted(individuals, key=lambda m: (-fitness(m), *size_and_id(m)))
    out: list[T] = []
    i = 0
    while i < len(by_fitness):
        lead = fitness(by_fitness[i])
        j = i + 1
        while j < len(by_fitness) and ties(fitness(by_fitness[j]), lead):
            j += 1
        out += sorted(by_fitness[i:j], key=size_and_id)
        i = j
    return out


def ranked_by_budget(items: Iterable[T], budget: Callable[[T], float] = lambda m: m.budget, **reading) -> list[T]:
    """The highest budget first (scores at different budgets measure different things), each
    budget's members as `ranked` orders them (`reading`: its `fitness` and `size_and_id`)."""
    items = list(items)
    out: list[T] = []
    for b in sorted({budget(m) for m in items}, reverse=True):
        out += ranked((m for m in items if budget(m) == b), **reading)
    return out


def _better(a: Individual, b: Individual) -> bool:
    """Whether `a` ranks before `b` (`ranked` for two)."""
    if ties(a.fitness, b.fitness):
        return (a.size, a.id) < (b.size, b.id)
    return a.fitness > b.fitness


def identity_key(ind: Individual) -> str:
    """What makes two individuals the same for the hall of fame."""
    if ind.fingerprint:
        return "fp:" + ind.fingerprint
    if ind.canonical:
        return "canon:" + ind.canonical
    return "expr:" + str(ind.expr)


def information(ind: Individual) -> tuple[float, int]:
    """How much stands behind a record's fitness: its budget, then its number of seeds."""
    from gpengine.noise import n_replicates

    return (float(ind.budget), n_replicates(ind))


class HallOfFame:
    """At most `capacity` best distinct individuals, iterated best first."""

    by_information = False  # class default: a hall pickled before the option existed keeps the old rule

    def __init__(self, capacity: int, by_information: bool = False):
        if capacity < 1:
            raise ValueError(f"hall of fame capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self.by_information = bool(by_information)
        self._members: list[Individual] = []  # best first

    def _replaces(self, new: Individual, old: Individual) -> bool:
        if self.by_information and information(new) != information(old):
            return information(new) > information(old)
        return _better(new, old)

    def _ranked(self, members: Iterable[Individual]) -> list[Individual]:
        return ranked_by_budget(members) if self.by_information else ranked(members)

    def update(self, individuals: Iterable[Individual]) -> list[Individual]:
        """Offer individuals; returns those that entered (in the order offered)."""
        by_key = {identity_key(m): m for m in self._members}
        offered = []
        for ind in individuals:
            if not math.isfinite(ind.fitness):
                continue
            key = identity_key(ind)
            old = by_key.get(key)
            if old is None or self._replaces(ind, old):
                by_key[key] = ind
                offered.append(ind)
        self._members = self._ranked(by_key.values())[: self.capacity]
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
