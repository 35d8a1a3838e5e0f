"""Selection: who becomes a parent, and who survives.

All schemes read `Individual.fitness` (higher is better; -inf for anything
that did not produce a measurement) and return Individuals, never indices.
Ties are broken the same way everywhere, by `rank_key`: higher fitness,
then smaller size (parsimony), then lower id (older first), so a selection
is fully determined by the population and the generator.

`nsga2` trades fitness against size (Deb et al. 2002), the standard guard
against bloat when both matter. Failed individuals count as infeasible:
every measured individual dominates them (Deb's constrained domination).

`SELECTIONS` maps names to one uniform signature `(rng, pop, n)`, spelled as
the `selection` setting spells them (`fitness_proportionate`); `get_selection`
also takes a hyphen for the underscore, binds options (like a tournament's `k`)
and fails on an unknown name or option with the list of known ones.
"""

from __future__ import annotations

import inspect
import math
from functools import partial
from typing import Callable, Sequence

import numpy as np

from gpengine.errors import ConfigError
from gpengine.individual import Individual

Selection = Callable[[np.random.Generator, Sequence[Individual], int], list[Individual]]


def rank_key(ind: Individual) -> tuple[float, int, int]:
    """Sort key, best first: higher fitness, then smaller size, then lower id."""
    return (-ind.fitness, ind.size, ind.id)


def _check(pop: Sequence[Individual], n: int) -> None:
    if n < 0:
        raise ValueError(f"cannot select {n} individuals")
    if n > 0 and not pop:
        raise ValueError("cannot select from an empty population")


def tournament(rng: np.random.Generator, pop: Sequence[Individual], n: int, k: int = 3,
               ranked: bool = False) -> list[Individual]:
    """`n` winners of independent tournaments of `k` entrants drawn with replacement.

    With replacement, as DEAP's selTournament and Koza draw them: one vectorised
    draw for all tournaments, where distinct entrants (`choice(replace=False)`,
    a permutation per tournament) cost more than the rest of making a child
    for a cheap evaluator. The selection pressure differs only when k is a sizeable
    share of the population; with k >= len(pop) every tournament is the whole
    population (its best wins). `ranked=True` says `pop` is sorted best first
    (`sorted(pop, key=rank_key)`): a tournament's winner is then its lowest index,
    which spares the comparisons when many tournaments share one population.
    """
    if k < 1:
        raise ConfigError(f"tournament size k must be at least 1, got {k}")
    _check(pop, n)
    if n == 0:
        return []
    if k >= len(pop):
        return [pop[0] if ranked else min(pop, key=rank_key)] * n
    flat = rng.integers(len(pop), size=n * k).tolist()  # an int size: a shape tuple costs an np.prod
    entrants = [flat[i : i + k] for i in range(0, n * k, k)]
    if ranked:
        return [pop[min(row)] for row in entrants]
    return [min((pop[i] for i in row), key=rank_key) for row in entrants]


def elitism(pop: Sequence[Individual], n: int) -> list[Individual]:
    """The best `n` (all of `pop` when n is larger), best first."""
    _check(pop, n)
    return sorted(pop, key=rank_key)[:n]


def roulette_weights(pop: Sequence[Individual]) -> np.ndarray:
    """Selection probabilities for `fitness_proportionate`.

    Fitness is shifted so the worst measured individual keeps a small
    positive weight (1e-3 of the fitness range; equal weights when all
    measured fitnesses are equal); failed ones (-inf) get 0, and when
    every individual failed all are equally likely.
    """
    f = np.array([ind.fitness for ind in pop], dtype=float)
    finite = np.isfinite(f)
    if not finite.any():
        return np.full(len(pop), 1.0 / len(pop))
    lo, hi = f[finite].min(), f[finite].max()
    floor = 1e-3 * (hi - lo) if hi > lo else 1.0
    w = np.where(finite, np.where(finite, f, lo) - lo + floor, 0.0)
    return w / w.sum()


def fitness_proportionate(rng: np.random.Generator, pop: Sequence[Individual], n: int) -> list[Individual]:
    """`n` draws with replacement, each individual's chance proportional to its shifted fitness."""
    _check(pop, n)
    if n == 0:
        return []
    picks = rng.choice(len(pop), size=n, replace=True, p=roulette_weights(pop))
    return [pop[int(i)] for i in picks]


# -- NSGA-II over (fitness up, size down) ------------------------------------------------


def dominates(a: Individual, b: Individual) -> bool:
    """Constrained Pareto dominance on (fitness maximised, size minimised).

    A measured individual dominates a failed one; between two failed ones,
    or two measured ones, the usual Pareto rule applies.
    """
    fa, fb = a.fitness, b.fitness
    if math.isfinite(fa) != math.isfinite(fb):
        return math.isfinite(fa)
    return fa >= fb and a.size <= b.size and (fa > fb or a.size < b.size)


def non_dominated_sort(pop: Sequence[Individual]) -> list[list[int]]:
    """Fronts of indices into `pop`, best front first (Deb's fast non-dominated sort)."""
    n = len(pop)
    dominated_by_me: list[list[int]] = [[] for _ in range(n)]
    count = [0] * n  # how many dominate i
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(pop[i], pop[j]):
                dominated_by_me[i].append(j)
                count[j] += 1
            elif dominates(pop[j], pop[i]):
                dominated_by_me[j].append(i)
                count[i] += 1
    fronts = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by_me[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def crowding_distance(pop: Sequence[Individual], front: Sequence[int]) -> dict[int, float]:
    """Crowding distance of each index of one front: boundary points get inf."""
    dist = {i: 0.0 for i in front}
    objectives = (lambda ind: ind.fitness, lambda ind: float(ind.size))
    for obj in objectives:
        values = {i: obj(pop[i]) for i in front}
        if not all(math.isfinite(v) for v in values.values()):
            continue  # a front of failed individuals: fitness says nothing
        order = sorted(front, key=lambda i: (values[i], i))
        lo, hi = values[order[0]], values[order[-1]]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for prev, cur, nxt in zip(order, order[1:], order[2:]):
            dist[cur] += (values[nxt] - values[prev]) / (hi - lo)
    return dist


def nsga2(pop: Sequence[Individual], n: int) -> list[Individual]:
    """The `n` survivors of NSGA-II: whole fronts in order, the last one cut by crowding distance.

    Returns all of `pop` when n is larger. Order: by front, then most
    isolated first within a front, ties by `rank_key`.
    """
    _check(pop, n)
    chosen: list[Individual] = []
    for front in non_dominated_sort(pop):
        if len(chosen) >= n:
            break
        dist = crowding_distance(pop, front)
        ordered = sorted(front, key=lambda i: (-dist[i], rank_key(pop[i])))
        chosen.extend(pop[i] for i in ordered[: n - len(chosen)])
    return chosen


def pareto_front(pop: Sequence[Individual]) -> list[Individual]:
    """The non-dominated individuals, best fitness first (so smallest size last)."""
    if not pop:
        return []
    return sorted((pop[i] for i in non_dominated_sort(pop)[0]), key=rank_key)


# -- GAAF's mixed scheme and the registry ------------------------------------------------


def gaaf_mixed(rng: np.random.Generator, pop: Sequence[Individual], n: int) -> list[Individual]:
    """GAAF's parent selection: one scheme per call, at random among elitism,
    a loose tournament (k=2) and fitness-proportionate."""
    mode = int(rng.integers(3))
    if mode == 0:
        best = elitism(pop, 2)
        return [best[i % len(best)] for i in range(n)]
    if mode == 1:
        return tournament(rng, pop, n, k=2)
    return fitness_proportionate(rng, pop, n)


def _elitism(rng: np.random.Generator, pop: Sequence[Individual], n: int) -> list[Individual]:
    return elitism(pop, n)


def _nsga2(rng: np.random.Generator, pop: Sequence[Individual], n: int) -> list[Individual]:
    return nsga2(pop, n)


def default_selections() -> dict[str, Selection]:
    """Built-in schemes by name, all `(rng, pop, n) -> list[Individual]`."""
    return {
        "tournament": tournament,
        "elitism": _elitism,
        "fitness_proportionate": fitness_proportionate,
        "nsga2": _nsga2,
        "gaaf_mixed": gaaf_mixed,
    }


SELECTIONS: dict[str, Selection] = default_selections()


def get_selection(name: str, **options) -> Selection:
    """The scheme `name` as `(rng, pop, n) -> list[Individual]`, with `options` bound (e.g. k=5)."""
    name = name.replace("-", "_")
    if name not in SELECTIONS:
        raise ConfigError(f"unknown selection {name!r} (known: {', '.join(SELECTIONS)})")
    fn = SELECTIONS[name]
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("rng", "pop", "n")]
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"unknown option {key!r} for selection {name!r} (allowed: {', '.join(allowed) if allowed else 'none'})"
            )
    if not options:
        return fn
    bound = partial(fn, **options)
    bound(np.random.default_rng(0), [], 0)  # bad option values fail now, not mid-run
    return bound
