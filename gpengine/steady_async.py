"""Asynchronous steady state (`mode=async`): a new offspring the moment a worker frees.

A generational search waits for the slowest evaluation of every generation;
with evaluations whose cost varies a lot (bnn-cifar's early abort stops a
hopeless candidate after one epoch) most workers idle most of the time. Here
up to `async_window` proposals (default: `jobs`) are in flight at once; each
time one completes, it is integrated into the population (steady-state:
replace the worst if better; NSGA-II: keep the best `population` of the
population plus the child; GAAF: replace the worst if admitted and better),
and a new proposal is made from the population as it is now: a due
successive-halving promotion first, else a new child.

Reproducibility. With `deterministic=true` (the default) completions are
integrated strictly in submission order: proposal n is made after the results
of proposals 0..n-W are integrated, W = `async_window`, whatever finishes
first. Every random draw and every population state then depends only on the
seed and W, never on timing or on the number of workers: `jobs=1` and
`jobs=4` give the same search for the same `async_window` (seeds of the
evaluations are derived from the candidates, gpengine.seeds). The price is
head-of-line blocking: a free worker waits while the oldest evaluation runs.
With `deterministic=false` each result is integrated as soon as it arrives
(no blocking; not reproducible).

Bookkeeping. Individual ids are given at integration, so the journal stays
in id order. Generation 0 is the first population: as in the generational
loop, drawn until `population` candidates pass the pre-screen (GAAF: are
admitted), the rejects recorded but never bred from. After it a "generation"
is `population` integrated new candidates (promotions and re-evaluations not
counted); at each generation's end the
elites are re-evaluated when `replicates > 1` and a checkpoint is written
with the proposals in flight, which a resume submits again first (exact in
deterministic mode); a proposal whose evaluation the journal already holds
(run after that checkpoint, before the kill) takes that result instead of
running again. Proposals go through the search's CandidateEvaluator one
at a time (memo, pre-screen, persistent store, seeds, counters); one already
in flight under the same dedup key waits for it instead of running twice.

Evaluation runs in the Executor's loky pool, one `Executor.submit` per
proposal (in process with the sequential backend). A timeout (`eval_timeout`)
fails that evaluation and restarts the workers (`Executor.restart_workers`).
A worker death takes the whole pool down, so every evaluation in flight
reports it, the culprit's and its neighbours' alike: those are suspects, and,
as `Executor.map` does, they are rerun one at a time with nothing beside
them. A suspect that dies alone is the culprit and fails ("worker died"); one
that finishes is cleared; new proposals wait meanwhile. Counting each death
against every evaluation in flight instead failed innocent neighbours of a
candidate that crashed its worker three times. The Dask backend is not
supported in this mode.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from typing import TYPE_CHECKING, Any

import attrs

from gpengine import fidelity, gaaf_ga
from gpengine.evaluator import Result
from gpengine.executor import Executor, NotStarted, Task, timed_out, worker_died
from gpengine.individual import Individual
from gpengine.noise import REEVAL

if TYPE_CHECKING:
    from gpengine.search import Search


class _NeedsRun(Exception):
    def __init__(self, tasks):
        super().__init__("needs a run")
        self.tasks = list(tasks)


class _Probe:
    """An executor stand-in that refuses to run: tells whether a proposal needs training."""

    def map(self, tasks, on_result=None):
        if tasks:
            raise _NeedsRun(tasks)
        return []


class _Replay:
    """An executor stand-in that hands back a result computed elsewhere."""

    def __init__(self, result: Result):
        self.result = result

    def map(self, tasks, on_result=None):
        out = [self.result for _ in tasks]
        if on_result is not None:
            for i, r in enumerate(out):
                on_result(i, r)
        return out


@attrs.define(eq=False)
class Slot:
    seq: int
    proposal: tuple  # (expr, operator, parent ids, budget)
    base: Individual  # described (canonical, hashes, seed), id not final
    key: tuple
    answered: Individual | None = None  # memo, pre-screen or store: no run needed
    task: Task | None = None
    future: Any = None
    started: float = 0.0
    deaths: int = 0  # worker deaths it was in flight for: a suspect once above 0
    alone: bool = False  # running with nothing beside it (a suspect being cleared or convicted)
    result: Result | None = None
    waits_for: "Slot | None" = None
    integrated: bool = False

    def ready(self) -> bool:
        if self.answered is not None or self.result is not None:
            return True
        if self.waits_for is not None:
            return self.waits_for.integrated
        return self.future is not None and self.future.done()


class AsyncSteadyState:
    def __init__(self, search: "Search", executor: Executor):
        self.s = search
        self.ex = executor
        cfg = search.config
        self.window = cfg.async_window or cfg.jobs
        self.slots: list[Slot] = []
        self.seq = 0
        self.count = 0  # new candidates integrated in this generation
        self.init_queue: list = []
        self.init_rounds = 0
        self.in_init = True
        self.journaled = self._journaled(search.known.values())

    @staticmethod
    def _journaled(records) -> dict[tuple, list[Result]]:
        """Results a resumed search journaled after its last checkpoint, per (candidate, budget, seed).

        Ids are only given at integration, so a proposal cannot be matched to its record by id
        as the generational loop does (CandidateEvaluator's `known`): it is matched by what it
        evaluates. Re-evaluations are matched by id at the generation's end (noise), and the
        memo, pre-screen or store answer the rest without a run."""
        out: dict[tuple, list[Result]] = {}
        for ind in sorted(records, key=lambda i: i.id):
            if not ind.cached and ind.operator != REEVAL:
                out.setdefault((ind.expr_hash, float(ind.budget), ind.seed), []).append(ind.result)
        return out

    # -- proposals ---------------------------------------------------------------------
    def _next_proposal(self) -> tuple | None:
        s, cfg = self.s, self.s.config
        if len(s.rungs) > 1:
            pending = [(fidelity.identity(sl.base), sl.base.budget) for sl in self.slots
                       if sl.proposal[1] == fidelity.PROMOTE]
            due = fidelity.promotions(s.individuals, s.rungs, cfg.eta, pending=pending)
            if due:
                ind, budget = due[0]
                return (ind.expr, fidelity.PROMOTE, (ind.id,), budget)
        if self.in_init:
            if not self.init_queue:
                return None  # wait for the first population to be integrated
            expr = self.init_queue.pop(0)
            return (expr, s.init_operator(expr), (), s.rungs[0])
        if len(s.population) < 1:
            return None
        children = s.offspring(1)
        if not children:
            return None
        expr, operator, parents = children[0]
        return (expr, operator, parents, s.rungs[0])

    def _submit(self, proposal: tuple, answered: Individual | None = None, result: Result | None = None,
                generation: int | None = None) -> None:
        """Start a proposal; `answered`/`result`/`generation`: what it already got, and the generation it
        was proposed in, before a checkpoint (resume)."""
        s = self.s
        expr, operator, parents, budget = proposal
        generation = s.generation if generation is None else generation
        ind = Individual(id=-1 - self.seq, expr=expr, generation=generation, operator=operator,
                         parent_ids=parents, budget=budget)
        base, _ = s.candidates.describe(ind)
        slot = Slot(self.seq, proposal, base, s.candidates.key(base))
        self.seq += 1
        twin = next((o for o in self.slots if o.key == slot.key and o.answered is None and o.waits_for is None), None)
        self.slots.append(slot)  # before it starts: the scheduler sees every slot
        if answered is not None:
            slot.answered = answered
        elif twin is not None:
            slot.waits_for = twin
        elif result is not None:
            slot.result = result
        else:
            try:
                slot.answered = s.candidates.evaluate([ind], _Probe())[0]
            except _NeedsRun as need:
                slot.task = need.tasks[0]
                done = self.journaled.get((base.expr_hash, float(base.budget), base.seed))
                if done:  # evaluated before the search was killed: integrated as it was, not run again
                    slot.result = done.pop(0)
                else:
                    self._start(slot)

    def _start(self, slot: Slot) -> None:
        if self.ex.backend == "sequential":
            slot.started = time.monotonic()
            slot.result = self.ex.map([slot.task])[0]
            self._arrived(slot)
        else:
            self._schedule()  # now, or once the suspects running alone are cleared

    def _schedule(self) -> None:
        """Submit the evaluations waiting for a worker: all of them, unless some are suspected of
        killing their worker; then only the oldest suspect, alone, once nothing else runs."""
        running = [sl for sl in self.slots if sl.future is not None and sl.result is None]
        waiting = [sl for sl in self.slots if sl.task is not None and sl.future is None and sl.result is None]
        suspects = [sl for sl in waiting if sl.deaths > 0]
        if any(sl.alone for sl in running) or (suspects and running):
            return
        for slot in suspects[:1] or waiting:
            slot.alone = bool(suspects)
            slot.future = self.ex.submit(slot.task)
            # after: the first submit, and the first after a restart, starts the pool and waits for
            # every worker to warm up, and the timeout is for the evaluation, not for that
            slot.started = time.monotonic()

    def _arrived(self, slot: Slot) -> None:
        """Commit a result to the persistent store the moment it arrives, as the generational loop
        does: in deterministic mode it may wait behind the oldest evaluation for a while before it
        is integrated (and journaled), and a kill meanwhile must not lose it. The resume finds it
        under this search's id and takes it as its own evaluation."""
        c = self.s.candidates
        if c.store is not None and c.dedup != "none":  # "none" keys by id, given only at integration
            c.store.put(slot.key[0], slot.base.budget, slot.task.seed, slot.result, c.search_id)

    # -- waiting -----------------------------------------------------------------------
    def _collect(self) -> None:
        """Turn finished futures into results; handle worker deaths and timeouts."""
        broken = False
        now = time.monotonic()
        for slot in self.slots:
            if slot.future is None or slot.result is not None:
                continue
            if slot.future.done():
                try:
                    slot.result = slot.future.result()
                    self._arrived(slot)
                except NotStarted:  # handed to a pool a death had broken: it never ran, so it runs again
                    slot.future = None
                    broken = True
                except Exception as exc:  # noqa: BLE001 - the worker died under it (or beside it)
                    slot.deaths += 1
                    broken = True
                    # alone, it can only be its own death; beside others it becomes a suspect, and a
                    # suspect next runs alone (_schedule), so no count of retries is needed
                    if slot.alone:
                        slot.result = worker_died(exc, cost=now - slot.started)
                    else:
                        slot.future = None
            elif self.ex.timeout is not None and now - slot.started >= self.ex.timeout:
                slot.result = timed_out(self.ex.timeout, cost=now - slot.started)
                broken = True
        if broken:  # a dead or hung worker takes the pool down: what ran beside it runs again
            self.ex.restart_workers()
            for slot in self.slots:
                if slot.result is None:
                    slot.future = None
        self._schedule()

    def _wait(self, slots: list[Slot]) -> None:
        live = [sl for sl in slots if sl.future is not None and sl.result is None]
        if not live:  # those waited for are held behind a suspect running alone: wait for that one
            live = [sl for sl in self.slots if sl.future is not None and sl.result is None]
        if live:
            timeout = None
            if self.ex.timeout is not None:
                timeout = max(0.0, min(sl.started + self.ex.timeout for sl in live) - time.monotonic())
            cf.wait([sl.future for sl in live], timeout=timeout, return_when=cf.FIRST_COMPLETED)
        self._collect()

    def _next_done(self) -> Slot:
        while True:
            self._collect()
            if self.s.config.deterministic:
                head = self.slots[0]
                if head.ready():
                    return head
                self._wait([head] if head.waits_for is None else [head.waits_for])
            else:
                ready = [sl for sl in self.slots if sl.ready()]
                if ready:
                    return ready[0]
                self._wait(self.slots)

    # -- integration -------------------------------------------------------------------
    def _integrate(self, slot: Slot) -> None:
        s = self.s
        self.slots.remove(slot)
        ind = attrs.evolve(slot.base, id=s.next_id())
        if slot.answered is not None:
            done = attrs.evolve(slot.answered, id=ind.id)
        elif slot.result is not None:
            done = s.candidates.evaluate([ind], _Replay(slot.result))[0]
        else:  # waited for a twin: answered from the memo now (or run here if the twin left nothing)
            try:
                done = s.candidates.evaluate([ind], _Probe())[0]
            except _NeedsRun:
                done = s.candidates.evaluate([ind], self.ex)[0]
        slot.integrated = True
        s.record([done])
        s.population = [s.current(p) for p in s.population]
        if done.operator == fidelity.PROMOTE:
            return
        self.count += 1
        current = s.current(done)
        if self.in_init:
            if s.qualifies(done):
                s.population.append(current)
            if not self.init_queue and not any(sl.proposal[1].startswith("init-") for sl in self.slots):
                self._end_init()
        else:
            s.population = s.survivors([current])

    def _end_init(self) -> None:
        """The first population is in: draw more for what did not qualify (as the generational
        loop does, a few rounds), else complete it and start breeding."""
        s, cfg = self.s, self.s.config
        short = cfg.population - len(s.population)
        if short > 0 and self.init_rounds < gaaf_ga.FILL_ROUNDS and s.stop_reason(hard_only=True) is None:
            self.init_rounds += 1
            self.init_queue = s.draw_first(short)
            if self.init_queue:
                return
        drawn = [s.current(i) for i in s.individuals if i.operator.startswith("init-")]
        s.population = s.complete_first(s.population, drawn)
        self.in_init = False

    def _generation_end(self) -> None:
        s = self.s
        s.reevaluate_elites(self.ex)
        s.end_generation()
        s.generation += 1
        self.count = 0

    # -- state -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """For checkpoints: the proposals in flight, in order, with what they already got."""
        pending = [(sl.proposal, sl.answered, sl.result if sl.waits_for is None else None, sl.base.generation)
                   for sl in self.slots]
        return {"pending": pending, "count": self.count, "init_queue": list(self.init_queue),
                "init_rounds": self.init_rounds, "in_init": self.in_init}

    def _restore(self, state: dict[str, Any]) -> None:
        self.count = state["count"]
        self.init_queue = list(state["init_queue"])
        self.init_rounds = state["init_rounds"]
        self.in_init = state["in_init"]
        for proposal, answered, result, *generation in state["pending"]:  # no generation: an older checkpoint
            self.s.note_proposed(proposal[0])
            self._submit(proposal, answered, result, *generation)
        if self.count >= self.s.config.population and not self.in_init:
            # checkpointed by _generation_end, which advances the generation only after saving: do it here
            self.s.generation += 1
            self.count = 0

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> str:
        s, cfg = self.s, self.s.config
        s.async_state = self.state
        if s.finished == "exhausted":
            # it ended with nothing to propose; drawing again from the saved generator would go on
            # as another search (killed after its last checkpoint, it is resumed as it ended)
            return "exhausted"
        if s.restored and s.async_resume is not None:
            self._restore(s.async_resume)
        elif not s.restored:
            self.init_queue = s.draw_first(cfg.population)
        else:
            self.in_init = False
        while True:
            stop = self._stop()
            if stop == "generations":  # keep what is in flight for a resume: finish it, integrate nothing
                while not all(sl.ready() or sl.waits_for is not None for sl in self.slots):
                    self._wait(self.slots)
                self._collect()
                return stop
            while stop is None and len(self.slots) < self.window and self._room():
                proposal = self._next_proposal()
                if proposal is None:
                    break
                self._submit(proposal)
            if not self.slots:
                return stop or "exhausted"
            self._integrate(self._next_done())  # after a stop: drain what is in flight, nothing new
            # generation 0 is the whole first population, however many draws the pre-screen cost
            if self.count >= cfg.population and not self.in_init and self._stop() is None:
                self._generation_end()

    def _stop(self) -> str | None:
        """As the generational loop: generation 0 (the first population) and `generations` more."""
        s = self.s
        return s.stop_reason(hard_only=True) or ("generations" if s.generation > s.config.generations else None)

    def _room(self) -> bool:
        """Whether the evaluation budget leaves room for one more evaluation in flight."""
        cfg = self.s.config
        if cfg.max_evaluations is None:
            return True
        running = sum(1 for sl in self.slots if sl.answered is None and sl.waits_for is None)
        return self.s.candidates.evaluations + running < cfg.max_evaluations


__all__ = ["AsyncSteadyState"]
