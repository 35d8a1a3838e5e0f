"""A synthetic search for tracking tests and benchmarks: known lineage, no evaluator.

`synthetic_search(n, population)` returns the events a search loop would
emit: generation 0 from "init-grow", later generations by crossover (two
parents) and mutation (one parent), some failures, some cache hits, and a
training curve on each measured individual. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import statistics

from gpengine.evaluator import DatasetInfo, Result
from gpengine.events import (
    GenerationEnded,
    GenerationStats,
    IndividualEvaluated,
    SearchEnded,
    SearchStarted,
)
from gpengine.expr_text import parse
from gpengine.individual import Individual
from primitives import get_set

EXPRS = ["x", "x * x", "sin(x)", "x + 1", "exp(x)", "x - cos(x)", "log(x)", "x * sin(x)", "x / 2", "neg(x)"]


def synthetic_search(n: int = 30, population: int = 8, seed: int = 7, search_id: str = "s-test-1", evaluator: str = "symreg"):
    """(start_event, per-generation list of (individual events, GenerationEnded), end_event, individuals)."""
    rng = random.Random(seed)
    pset = get_set("arith")
    inds: list[Individual] = []
    generations = []
    next_id = 0
    gen = 0
    while next_id < n:
        members = []
        for _ in range(min(population, n - next_id)):
            if gen == 0:
                op, parents = "init-grow", ()
                text = EXPRS[next_id % len(EXPRS)]
            else:
                prev = [i for i in inds if i.generation == gen - 1]
                if rng.random() < 0.5:
                    a, b = rng.sample(prev, 2) if len(prev) > 1 else (prev[0], prev[0])
                    op, parents = "crossover", (a.id, b.id)
                    text = f"{a.expr} + {b.expr}" if len(str(a.expr)) < 40 else str(b.expr)
                else:
                    a = rng.choice(prev)
                    op, parents = "mutate-point", (a.id,)
                    text = f"sin({a.expr})" if len(str(a.expr)) < 40 else "x"
            expr = parse(text, pset)
            roll = rng.random()
            if roll < 0.1:
                result = Result.failed("overflow in exp", cost=0.01)
            else:
                fit = round(rng.uniform(0, 1) + 0.1 * gen, 6)
                curve = tuple(round(fit * (k + 1) / 3, 6) for k in range(3))
                result = Result(fit, "ok", "", {"mse": 1 - fit / 2}, {"val_fitness": curve}, cost=0.05)
            members.append(
                Individual(
                    id=next_id,
                    expr=expr,
                    generation=gen,
                    operator=op,
                    parent_ids=parents,
                    canonical=str(expr),
                    expr_hash=expr.structural_hash,
                    fingerprint=f"fp{next_id % 11}",
                    budget=1.0,
                    seed=rng.randrange(2**31),
                    result=result,
                    cached=roll > 0.9,
                )
            )
            next_id += 1
        inds.extend(members)
        fits = [i.fitness for i in inds if math.isfinite(i.fitness)]
        best = max((i for i in members if math.isfinite(i.fitness)), key=lambda i: i.fitness, default=None)
        stats = GenerationStats(
            generation=gen,
            best=max(fits) if fits else math.nan,
            mean=statistics.fmean(fits) if fits else math.nan,
            median=statistics.median(fits) if fits else math.nan,
            diversity=len({i.fingerprint for i in members}) / len(members),
            evaluations=sum(not i.cached for i in inds),
            failures=sum(not i.result.ok for i in inds),
            cost=sum(i.result.cost for i in inds),
            best_id=best.id if best else -1,
        )
        generations.append(([IndividualEvaluated(i) for i in members], GenerationEnded(stats)))
        gen += 1
    ok = sorted((i for i in inds if math.isfinite(i.fitness)), key=lambda i: (-i.fitness, i.id))
    start = SearchStarted(
        search_id=search_id,
        evaluator=evaluator,
        evaluator_version="1.2",
        engine_version="0.1.0",
        config={"population": population, "generations": gen, "seed": seed, "evaluator.noise": 0.0, "long": "v" * 7000},
        seed=seed,
        dataset=DatasetInfo("synthetic-sin", "abc123", "memory://synthetic", 100, 20),
    )
    end = SearchEnded(best=ok[0] if ok else None, hall_of_fame=tuple(ok[:3]), reason="generations", elapsed=1.5)
    return start, generations, end, inds


def replay(listener, start, generations, end, upto: int | None = None) -> None:
    """Feed the events to a listener (all generations, or the first `upto`; then no end)."""
    listener.on_search_start(start)
    for k, (events, gen_end) in enumerate(generations):
        if upto is not None and k >= upto:
            return
        for e in events:
            listener.on_individual(e)
        listener.on_generation(gen_end)
    listener.on_search_end(end)
