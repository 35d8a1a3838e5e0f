"""Noise: re-evaluate the elites with more seeds; fitness as mean and spread.

One training run is one draw: on CIFAR-10 at the quick fidelity, seed spread
is 0.1-0.3 points for most activations and about 1 point for some, so gaps of
that size between two single runs mean nothing. With `replicates=R` (> 1),
at the end of every generation the best `reeval_top` distinct members that
have fewer than R seeds are trained again with replicate seeds 1..R-1
(`derive_seed(search seed, canonical hash, budget, replicate)`; replicate 0
is the original evaluation).

Each re-evaluation is its own individual record: operator "reeval", one
parent (the candidate's previous record), the same expression and budget,
its replicate seed. Its `Result.fitness` is the **mean** over the replicates
so far, so selection (which reads `Individual.fitness`) uses the mean; its
metrics carry `seed_fitness` (this replicate alone), `fitness_mean`,
`fitness_std` (sample standard deviation), `replicates` (how many) and
`replicate` (its index). The journal and MLflow keep all of it, no schema
change.

The replicate history is recomputed from the records, so resume needs no
extra checkpoint state.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

import attrs

from gpengine.evaluator import OK, Result
from gpengine.individual import Individual

REEVAL = "reeval"


def n_replicates(ind: Individual) -> int:
    """How many seeds stand behind `ind.fitness`."""
    if ind.operator == REEVAL:
        return int(ind.result.metrics.get("replicates", 1))
    return 1


def seed_values(chain: Sequence[Individual]) -> list[float]:
    """The single-seed fitness values of a candidate's records at one budget (original first)."""
    out = []
    for ind in chain:
        if not ind.result.ok:
            continue
        value = (float(ind.result.metrics.get("seed_fitness", ind.result.fitness)) if ind.operator == REEVAL
                 else float(ind.result.fitness))
        if math.isfinite(value):  # a failed replicate's record carries the mean so far, with seed_fitness nan
            out.append(value)
    return out


def aggregate(raw: Result, replicate: int, previous: Sequence[float]) -> Result:
    """The record of replicate `replicate`: fitness = mean over `previous` + this one when it measured."""
    values = list(previous) + ([float(raw.fitness)] if raw.ok else [])
    metrics = dict(raw.metrics)
    metrics["replicate"] = replicate
    if not values:
        return attrs.evolve(raw, metrics=metrics)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    metrics.update(seed_fitness=float(raw.fitness) if raw.ok else math.nan, fitness_mean=mean, fitness_std=std,
                   replicates=len(values))
    message = raw.message if raw.ok else f"replicate {replicate} failed: {raw.message}"
    return Result(mean, OK, message, metrics, raw.curves, raw.cost)


def history(individuals: Iterable[Individual], key) -> dict[tuple[str, float], list[Individual]]:
    """Records per (candidate, budget), in id order: the original, then its re-evaluations."""
    out: dict[tuple[str, float], list[Individual]] = {}
    for ind in individuals:
        out.setdefault((key(ind), float(ind.budget)), []).append(ind)
    return out


def elites_to_reevaluate(population: Sequence[Individual], top: int, replicates: int, key) -> list[Individual]:
    """The best `top` distinct members (by rank) that have fewer than `replicates` seeds."""
    from gpengine.selection import rank_key

    out, seen = [], set()
    for ind in sorted(population, key=rank_key):
        k = key(ind)
        if k in seen or not math.isfinite(ind.fitness):
            continue
        seen.add(k)
        if len(seen) > top:
            break
        if n_replicates(ind) < replicates:
            out.append(ind)
    return out


def reevaluate_elites(executor: Any, candidates: Any, individuals: Sequence[Individual],
                      population: Sequence[Individual], *, replicates: int, top: int, next_id: int, generation: int,
                      known: Mapping[int, Individual], limit: int | None = None) -> list[Individual]:
    """Train the elites' missing replicates, at most `limit` (the best elites' first); returns their new
    records (ids from `next_id`).

    `candidates` is the search's CandidateEvaluator: its search seed, dedup key,
    persistent store and counters (evaluations, cost) are used and updated, so
    a replicate is trained once ever (the store is keyed by seed too) and
    counts against the search's budget. `known`: records journaled before a
    crash, taken as they are.
    """
    from gpengine.canonical import canonicalize
    from gpengine.executor import Task
    from gpengine.fidelity import identity
    from gpengine.seeds import derive_seed

    chains = history(individuals, identity)
    plans = []  # (elite, its chain at that budget, replicate index, seed)
    for elite in elites_to_reevaluate(population, top, replicates, identity):
        chain = chains[(identity(elite), float(elite.budget))]
        chain = [c for c in chain if c.operator == REEVAL or c is chain[0]]
        for r in range(len(chain), replicates):
            plans.append((elite, chain, r, derive_seed(candidates.search_seed, elite.expr_hash, elite.budget, r)))
    plans = plans[:limit]  # a search's max_evaluations counts these too
    store = candidates.store
    raw: dict[int, Any] = {}

    def ran_before(result: Any) -> None:
        """A replicate this search trained before it was stopped: an evaluation of its budget, as in
        the uninterrupted search (CandidateEvaluator counts its recovered results the same way)."""
        candidates.evaluations += 1
        candidates.cost += result.cost

    tasks, todo = [], []
    for k, (elite, _, r, seed) in enumerate(plans):
        old = known.get(next_id + k)
        if old is not None and old.operator == REEVAL and old.seed == seed:
            raw[k] = old
            ran_before(old.result)
        elif store is not None and (stored := store.get(candidates.key(elite)[0], elite.budget, seed)) is not None:
            raw[k] = stored[0]
            if stored[1] == candidates.search_id:  # trained by this very search before a crash
                ran_before(stored[0])
        else:
            tasks.append(Task(canonicalize(elite.expr, candidates.pset), elite.budget, seed))
            todo.append(k)

    def arrived(i: int, result: Any) -> None:  # committed as it finishes: a crash mid-batch loses none
        if store is not None:
            store.put(candidates.key(plans[todo[i]][0])[0], tasks[i].budget, tasks[i].seed, result,
                      candidates.search_id)

    for k, result in zip(todo, executor.map(tasks, on_result=arrived)):
        raw[k] = result
        candidates.evaluations += 1
        candidates.cost += result.cost
    done = []
    for k, (elite, chain, r, seed) in enumerate(plans):
        got = raw[k]
        if isinstance(got, Individual):  # journaled before a crash: take it as it was
            ind = got
        else:
            ind = attrs.evolve(chain[-1], id=next_id + k, generation=generation, operator=REEVAL,
                               parent_ids=(chain[-1].id,), seed=seed,
                               result=aggregate(got, r, seed_values(chain)), cached=False)
        chain.append(ind)
        done.append(ind)
    return done


__all__ = ["REEVAL", "aggregate", "elites_to_reevaluate", "history", "n_replicates", "reevaluate_elites",
           "seed_values"]
