"""From proposed expressions to evaluated individuals, spending as little as possible.

For every proposal: canonical form, behaviour fingerprint, derived seed. A
proposal whose fingerprint (or canonical hash) was already evaluated at the
same budget is answered from memory; duplicates inside one batch run once; an
optional zero-cost pre-screen rejects hopeless candidates before any
training. What is left goes to the executor as one batch.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import attrs

from gpengine.canonical import canonicalize
from gpengine.evaluator import FAILED, Result
from gpengine.executor import Executor, Task
from gpengine.expr import Expr
from gpengine.fingerprint import fingerprint
from gpengine.individual import Individual
from gpengine.prescreen import prescreen as prescreen_expr
from gpengine.seeds import derive_seed
from primitives.registry import PrimitiveSet


class CandidateEvaluator:
    def __init__(self, pset: PrimitiveSet, search_seed: int, dedup: str = "fingerprint", prescreen: bool = False,
                 store: Any = None, search_id: str = ""):
        self.pset = pset
        self.search_id = search_id
        self.search_seed = search_seed
        self.dedup = dedup
        self.prescreen = prescreen
        self.store = store  # optional persistent cache (gpengine.result_store.ResultStore)
        self.memo: dict[tuple[str, float], Result] = {}
        self.evaluations = 0  # evaluations actually run
        self.cost = 0.0  # evaluator seconds spent
        self.hits = 0  # proposals answered without running anything
        self.rejections = 0
        self.consecutive_failures = 0  # fresh evaluations that failed in a row
        self.last_failure = ""

    _STATE = ("memo", "evaluations", "cost", "hits", "rejections", "consecutive_failures", "last_failure")

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly where this left off."""
        return {name: getattr(self, name) for name in self._STATE}

    def load_state(self, state: dict[str, Any]) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])

    def rejects(self, expr: Expr) -> bool:
        """Whether the pre-screen (when on) turns `expr` away: known before any evaluation."""
        return self.prescreen and prescreen_expr(canonicalize(expr, self.pset), self.pset) is not None

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

    def evaluate(self, born: Sequence[Individual], executor: Executor,
                 known: dict[int, Individual] | None = None,
                 on_arrival: Callable[[Individual], None] | None = None) -> list[Individual]:
        """Evaluate a batch. `known`: results already journaled for these ids (a resumed
        search), used instead of running again. With a store, each result is committed
        to it the moment it arrives, so a crash mid-batch loses nothing finished.
        `on_arrival` hears of each training as it finishes (the proposal that asked for it,
        with its result), before the batch is done."""
        known = known or {}
        described = [self.describe(ind) for ind in born]
        results: list[Result | None] = [None] * len(described)
        cached = [False] * len(described)
        pending: dict[tuple[str, float], Task] = {}  # one task per distinct key
        owner: dict[tuple[str, float], int] = {}  # key -> the proposal that asked first (the rest are hits)
        recovered: dict[tuple[str, float], Result] = {}  # computed before a crash: not run again
        waiting: dict[int, tuple[str, float]] = {}  # proposal index -> key of its task
        for idx, (ind, canon) in enumerate(described):
            key = self.key(ind)
            if key in self.memo:
                results[idx], cached[idx] = self.memo[key], True
            elif key in pending or key in recovered:
                waiting[idx], cached[idx] = key, True
            elif self.prescreen and (reason := prescreen_expr(canon, self.pset)) is not None:
                results[idx] = self.memo[key] = Result.rejected(f"pre-screen: {reason}")
                self.rejections += 1
            elif ind.id in known and known[ind.id].expr_hash == ind.expr_hash and not known[ind.id].cached:
                recovered[key] = known[ind.id].result
                waiting[idx] = key
            elif self.store is not None and (stored := self.store.get(key[0], ind.budget, ind.seed)) is not None \
                    and (self.dedup != "none" or stored[1] == self.search_id):
                # dedup=none keys by record id, which names nothing across searches: the store then
                # serves only this search's own results from before a crash
                if stored[1] == self.search_id:  # computed by this very search before a crash
                    recovered[key] = stored[0]
                    waiting[idx] = key
                else:
                    results[idx], cached[idx] = stored[0], True
                    self.memo[key] = stored[0]
            else:
                pending[key] = Task(canon, ind.budget, ind.seed)
                owner[key] = idx
                waiting[idx] = key
        keys = list(pending)
        seeds = {k: t.seed for k, t in pending.items()}

        def arrived(i: int, result: Result) -> None:
            if self.store is not None:
                self.store.put(keys[i][0], keys[i][1], seeds[keys[i]], result, self.search_id)
            if on_arrival is not None:
                on_arrival(attrs.evolve(described[owner[keys[i]]][0], result=result))

        fresh = dict(zip(keys, executor.map([pending[k] for k in keys], on_result=arrived)))
        fresh.update(recovered)
        for idx in sorted(waiting):  # in proposal order, so counters are order-independent
            key = waiting[idx]
            if key in self.memo or cached[idx]:
                continue
            result = fresh[key]
            self.memo[key] = result
            self.evaluations += 1
            self.cost += result.cost
            if result.status == FAILED:
                self.consecutive_failures += 1
                self.last_failure = result.message
            elif result.ok:
                self.consecutive_failures = 0
        for idx, key in waiting.items():
            results[idx] = fresh[key]
        self.hits += sum(cached)
        return [attrs.evolve(ind, result=r, cached=c) for (ind, _), r, c in zip(described, results, cached)]
