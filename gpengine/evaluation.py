"""From proposed expressions to evaluated individuals, spending as little as possible.

For every proposal: canonical form, behaviour fingerprint, derived seed. A
proposal whose fingerprint (or canonical hash) was already evaluated at the
same budget is answered from memory; duplicates inside one batch run once; an
optional zero-cost pre-screen rejects hopeless candidates before any
training. What is left goes to the executor as one batch.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs

from gpengine.canonical import canonicalize
from gpengine.evaluator import Result
from gpengine.executor import Executor, Task
from gpengine.expr import Expr
from gpengine.fingerprint import fingerprint
from gpengine.individual import Individual
from gpengine.prescreen import prescreen as prescreen_expr
from gpengine.seeds import derive_seed
from primitives.registry import PrimitiveSet


class CandidateEvaluator:
    def __init__(self, pset: PrimitiveSet, search_seed: int, dedup: str = "fingerprint", prescreen: bool = False,
                 store: Any = None):
        self.pset = pset
        self.search_seed = search_seed
        self.dedup = dedup
        self.prescreen = prescreen
        self.store = store  # optional persistent cache: get(key, budget, seed) / put(...)
        self.memo: dict[tuple[str, float], Result] = {}
        self.evaluations = 0  # evaluations actually run
        self.cost = 0.0  # evaluator seconds spent
        self.hits = 0  # proposals answered without running anything
        self.rejections = 0

    def describe(self, ind: Individual) -> tuple[Individual, Expr]:
        """Fill canonical form, hashes, fingerprint and seed; also return the canonical tree."""
        canon = canonicalize(ind.expr, self.pset)
        chash = canon.structural_hash
        fp = fingerprint(canon, self.pset) if self.dedup == "fingerprint" else ""
        seed = derive_seed(self.search_seed, chash, ind.budget)
        return attrs.evolve(ind, canonical=str(canon), expr_hash=chash, fingerprint=fp, seed=seed), canon

    def key(self, ind: Individual) -> tuple[str, float]:
        if self.dedup == "fingerprint":
            return ind.fingerprint, ind.budget
        if self.dedup == "canonical":
            return ind.expr_hash, ind.budget
        return f"#{ind.id}", ind.budget

    def evaluate(self, born: Sequence[Individual], executor: Executor) -> list[Individual]:
        described = [self.describe(ind) for ind in born]
        results: list[Result | None] = [None] * len(described)
        cached = [False] * len(described)
        pending: dict[tuple[str, float], Task] = {}  # one task per distinct key
        waiting: dict[int, tuple[str, float]] = {}  # proposal index -> key of its task
        for idx, (ind, canon) in enumerate(described):
            key = self.key(ind)
            if key in self.memo:
                results[idx], cached[idx] = self.memo[key], True
            elif key in pending:
                waiting[idx], cached[idx] = key, True
            elif self.prescreen and (reason := prescreen_expr(canon, self.pset)) is not None:
                results[idx] = self.memo[key] = Result.rejected(f"pre-screen: {reason}")
                self.rejections += 1
            elif self.store is not None and (stored := self.store.get(key[0], ind.budget, ind.seed)) is not None:
                results[idx], cached[idx] = stored, True
                self.memo[key] = stored
            else:
                pending[key] = Task(canon, ind.budget, ind.seed)
                waiting[idx] = key
        keys = list(pending)
        fresh = dict(zip(keys, executor.map([pending[k] for k in keys])))
        for key, result in fresh.items():
            self.memo[key] = result
            self.evaluations += 1
            self.cost += result.cost
            if self.store is not None and result.status != "failed":
                self.store.put(key[0], key[1], pending[key].seed, result)
        for idx, key in waiting.items():
            results[idx] = fresh[key]
        self.hits += sum(cached)
        return [attrs.evolve(ind, result=r, cached=c) for (ind, _), r, c in zip(described, results, cached)]
