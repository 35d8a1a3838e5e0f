"""Replacement (survivor selection): the population that members and new children leave.

- strategy gaaf: an admitted child replaces the worst member if it scores higher
  (gaaf_ga.replace_worst);
- NSGA-II: the best `population` of members and children, by front then crowding;
- steady state and async: each child in turn replaces the current worst member
  (ties: the newest) if it is better;
- generational: the `elitism` best members, then the children, `population` in all.
"""

from __future__ import annotations

from typing import Any, Sequence

from gpengine import gaaf_ga, selection
from gpengine.config import SearchConfig
from gpengine.individual import Individual


def survivors(config: SearchConfig, population: Sequence[Individual], offspring: Sequence[Individual],
              evaluator: Any) -> list[Individual]:
    """The next population from `population` and its new `offspring` (`evaluator`: GAAF's admission floor)."""
    n = config.population
    if config.strategy == "gaaf":
        return gaaf_ga.replace_worst(population, offspring, config.admission, evaluator, capacity=n)
    if config.selection == "nsga2":
        return list(selection.nsga2(list(population) + list(offspring), n))
    if config.mode in ("steady_state", "async"):
        pop = list(population)
        for child in offspring:
            worst = min(range(len(pop)), key=lambda i: (pop[i].fitness, -pop[i].id))
            if child.fitness > pop[worst].fitness:
                pop[worst] = child
        return pop
    elites = selection.elitism(population, config.elitism) if config.elitism else []
    return list(elites) + list(offspring)[: n - len(elites)]


__all__ = ["survivors"]
