"""GAAF's genetic algorithm (Li et al. 2023), the baseline tree GP must beat.

`strategy=gaaf` runs it on the same Expr genome as tree GP (see
`gpengine.init.from_genes`/`to_genes`), so it shares the cache, the
pre-screen, the seeds, the journal and the lineage:

* genome: GAAF's 3-gene form B(U1(x), U2(x)) (`init=gaaf3`, the default
  with this strategy) or its 6-gene form B2(U3(B1(U1(x), U2(x))), U4(x))
  (`init=gaaf6`), one primitive per gene;
* start: random genomes, and only those scoring above the admission
  threshold enter the population; more are drawn until it is full;
* each generation (`offspring` children, 10 by default as in the paper):
  one selection mode drawn for the whole generation among elitism (the best
  two), a loose tournament (k = 2) and fitness-proportionate
  (`selection.gaaf_mixed`); each child is one parent with one gene changed
  to another primitive of the same arity; a child whose exact genome was
  already evaluated in this search is drawn again (GAAF skips it; functional
  duplicates are not skipped by the GA, though the engine's dedup answers
  them without training);
* steady state: an admitted child replaces the worst member if it scores
  higher.

The admission threshold is `admission` when set; otherwise the evaluator's
degenerate floor when it reports one (bnn-cifar's `abort_floor` metric: the
accuracy of a constant activation, GAAF's 11%) or exposes a
`degenerate_floor` attribute; otherwise -inf (everything measured enters).
Aborted evaluations never enter.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from gpengine.evaluator import OK
from gpengine.expr import Expr
from gpengine.individual import Individual
from gpengine.init import from_genes, gaaf_3gene, gaaf_6gene, to_genes
from gpengine.selection import gaaf_mixed

MUTATE_GENE = "mutate-gene"
#: GAAF: 10 children per generation
DEFAULT_OFFSPRING = 10
#: rounds of fresh random genomes drawn to fill the first population before giving up on admission
FILL_ROUNDS = 10


def n_genes(init: str) -> int:
    return 6 if init == "gaaf6" else 3


def random_genome(rng: np.random.Generator, pset: Any, genes: int) -> Expr:
    return gaaf_6gene(rng, pset) if genes == 6 else gaaf_3gene(rng, pset)


def mutate_gene(rng: np.random.Generator, expr: Expr, pset: Any) -> Expr:
    """The same genome with one gene, chosen uniformly, set to another primitive of its arity."""
    genes = to_genes(expr)
    if genes is None:
        raise ValueError(f"{expr} is not a GAAF genome")
    slot = int(rng.integers(len(genes)))
    arity = pset.get(genes[slot]).arity
    choices = [p.name for p in pset.with_arity(arity) if p.name != genes[slot]]
    if not choices:
        return expr
    new = list(genes)
    new[slot] = choices[int(rng.integers(len(choices)))]
    return from_genes(pset, tuple(new))


def children(rng: np.random.Generator, population: Sequence[Individual], pset: Any, n: int,
             seen: set[tuple[str, ...]], retries: int) -> list[tuple[Expr, str, tuple[int, ...]]]:
    """One generation's proposals: one selection mode for all, one-gene mutants, no repeated genome.

    `seen` holds the genomes evaluated so far and is updated. A child still
    repeating a genome after `retries` redraws is skipped, so fewer than `n`
    may come back.
    """
    parents = gaaf_mixed(rng, population, n)
    out = []
    for parent in parents:
        for _ in range(retries + 1):
            child = mutate_gene(rng, parent.expr, pset)
            genome = to_genes(child)
            if genome not in seen:
                seen.add(genome)
                out.append((child, MUTATE_GENE, (parent.id,)))
                break
    return out


def fresh_genomes(rng: np.random.Generator, pset: Any, n: int, genes: int, seen: set[tuple[str, ...]],
                  retries: int = 20) -> list[Expr]:
    """`n` random genomes not in `seen` (fewer when the space is nearly exhausted); updates `seen`."""
    out = []
    for _ in range(n):
        for _ in range(retries):
            expr = random_genome(rng, pset, genes)
            genome = to_genes(expr)
            if genome not in seen:
                seen.add(genome)
                out.append(expr)
                break
    return out


def threshold(ind: Individual, configured: float | None, evaluator: Any) -> float:
    """The admission threshold that applies to `ind` (see the module docstring)."""
    if configured is not None:
        return float(configured)
    floor = ind.result.metrics.get("abort_floor")
    if floor is not None:
        return float(floor)
    floor = getattr(evaluator, "degenerate_floor", None)
    if callable(floor):
        floor = floor(ind.budget)
    return float(floor) if floor is not None else -math.inf


def admitted(ind: Individual, configured: float | None, evaluator: Any) -> bool:
    return ind.result.status == OK and math.isfinite(ind.fitness) and ind.fitness > threshold(ind, configured, evaluator)


def replace_worst(population: Sequence[Individual], offspring: Sequence[Individual], configured: float | None,
                  evaluator: Any, key=lambda ind: ind.fitness, capacity: int | None = None) -> list[Individual]:
    """GAAF's steady-state step: each admitted child, in order, takes a free place while the population
    is short of `capacity` (the first one admits fewer than that under a strict threshold), else
    replaces the worst member if better."""
    pop = list(population)
    for child in offspring:
        if not admitted(child, configured, evaluator) or any(p.id == child.id for p in pop):
            continue
        if capacity is not None and len(pop) < capacity:
            pop.append(child)
            continue
        worst = min(range(len(pop)), key=lambda i: (key(pop[i]), -pop[i].id))
        if key(child) > key(pop[worst]):
            pop[worst] = child
    return pop


__all__ = ["DEFAULT_OFFSPRING", "MUTATE_GENE", "admitted", "children", "fresh_genomes", "mutate_gene", "n_genes",
           "replace_worst", "threshold"]
